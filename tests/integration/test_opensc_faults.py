"""Real OpenSC against a virtual card told to misbehave (cardreader/virtualcard/faults.py): for
each fault the tools fail with an error, and never print data that is not the card's, or
(for a slow card) still give exactly the card's data."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cardreader.virtualcard import VirtualCard, VpcdBridge, parse_fault
from konbini_common.cardfile import CardFile
from konbini_testkit.cards import make_card
from konbini_testkit.vpcd import VpcdSlot

pytestmark = [pytest.mark.opensc, pytest.mark.pcsc]


@pytest.fixture(scope="module", autouse=True)
def opensc_tools() -> None:
    if shutil.which("pkcs15-tool") is None or shutil.which("opensc-tool") is None:
        pytest.skip("OpenSC is not installed (pkcs15-tool, opensc-tool)")


@pytest.fixture
def card(tmp_path: Path) -> Iterator[tuple[VirtualCard, Path]]:
    path = make_card(tmp_path / "card.json")
    yield VirtualCard(path), path


@pytest.fixture
def inserted(vpcd_slot: VpcdSlot, card: tuple[VirtualCard, Path]) -> Iterator[tuple[VpcdSlot, VirtualCard, Path]]:
    from cardreader.pcsc import wait_for_card, wait_for_removal

    assert wait_for_removal(vpcd_slot.reader, timeout=5.0)
    virtual, path = card
    bridge = VpcdBridge(virtual, host=vpcd_slot.host, port=vpcd_slot.port)
    bridge.insert()
    try:
        assert wait_for_card(vpcd_slot.reader, timeout=5.0)
        yield vpcd_slot, virtual, path
    finally:
        bridge.remove()


def _reader_number(reader: VpcdSlot) -> str:
    from cardreader.pcsc import list_readers

    return str(list_readers().index(reader.reader))


def _tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def _certificate_in(output: str) -> bytes | None:
    body = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", output, re.S)
    return base64.b64decode("".join(body.group(1).split())) if body else None


READ_FAULTS = [
    "sw=6F00:read-binary",
    "sw=6581:read-binary",
    "sw=6982:read-binary",
    "pull-during=4",
    "pull-after=3",
    "corrupt=read-binary:0",
]


@pytest.mark.parametrize("spec", READ_FAULTS)
def test_pkcs15_tool_fails_reading_the_certificate_and_prints_none_of_it(
    inserted: tuple[VpcdSlot, VirtualCard, Path], spec: str
) -> None:
    reader, virtual, _ = inserted
    virtual.faults.add(parse_fault(spec))
    run = _tool("pkcs15-tool", "--reader", _reader_number(reader), "--read-certificate", "1")
    assert virtual.faults.hits, "the fault never fired"
    assert run.returncode != 0 or _certificate_in(run.stdout) is None, run.stdout
    assert _certificate_in(run.stdout) is None, run.stdout


def test_pkcs15_tool_reads_exactly_the_certificate_from_a_slow_card(
    inserted: tuple[VpcdSlot, VirtualCard, Path],
) -> None:
    reader, virtual, path = inserted
    virtual.faults.add(parse_fault("delay=0.01-0.03"))
    run = _tool("pkcs15-tool", "--reader", _reader_number(reader), "--read-certificate", "1")
    assert run.returncode == 0, run.stderr
    assert _certificate_in(run.stdout) == CardFile.load(path).auth_certificate
    assert len(virtual.faults.hits) > 5


def test_opensc_fails_on_a_card_that_gives_no_answer_to_reset(
    vpcd_slot: VpcdSlot, card: tuple[VirtualCard, Path]
) -> None:
    from cardreader.pcsc import wait_for_card, wait_for_removal

    virtual, _ = card
    virtual.faults.add(parse_fault("no-power-on"))
    assert wait_for_removal(vpcd_slot.reader, timeout=5.0)
    with VpcdBridge(virtual, host=vpcd_slot.host, port=vpcd_slot.port):
        wait_for_card(vpcd_slot.reader, timeout=2.0)
        atr = _tool("opensc-tool", "--reader", _reader_number(vpcd_slot), "--atr")
        run = _tool("pkcs15-tool", "--reader", _reader_number(vpcd_slot), "--read-certificate", "1")
    # opensc-tool --atr prints the reader's (empty) ATR and exits 0: it shows no card's ATR.
    assert CardFile.load(card[1]).atr.hex(":") not in atr.stdout.lower()
    assert run.returncode != 0 and _certificate_in(run.stdout) is None, run.stdout


def test_pkcs11_tool_fails_to_sign_when_the_card_forgets_the_verified_pin(
    inserted: tuple[VpcdSlot, VirtualCard, Path], tmp_path: Path
) -> None:
    from test_opensc_interop import pkcs11_sign_command

    reader, virtual, _ = inserted
    virtual.faults.add(parse_fault("forget-verified=sign"))
    message = tmp_path / "challenge.bin"
    message.write_bytes(b"konbini challenge")
    signature = tmp_path / "signature.bin"
    run = _tool(*pkcs11_sign_command(reader, message, signature))
    assert virtual.faults.hits
    assert run.returncode != 0, run.stdout
    assert not signature.exists() or signature.stat().st_size == 0
