"""Real OpenSC against the virtual card in pcscd's vpcd reader: the card must be usable by
the tools people use with real My Number cards (pkcs15-tool, pkcs11-tool, opensc-tool)."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from cardreader.virtualcard import VirtualCard, VpcdBridge
from konbini_common.cardfile import CardFile
from konbini_testkit.cards import PIN, make_card
from konbini_testkit.vpcd import VpcdSlot

pytestmark = [pytest.mark.opensc, pytest.mark.pcsc]

PKCS11_MODULES = (
    "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so",
    "/usr/lib/opensc-pkcs11.so",
    "/usr/lib64/opensc-pkcs11.so",
)
TOOLS = ("pkcs15-tool", "pkcs11-tool", "opensc-tool")


def _pkcs11_module() -> str | None:
    return next((path for path in PKCS11_MODULES if Path(path).exists()), None)


@pytest.fixture(scope="module", autouse=True)
def opensc_tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing or _pkcs11_module() is None:
        why = f"OpenSC is not installed (missing: {', '.join(missing) or 'opensc-pkcs11.so'})"
        if os.environ.get("KONBINI_REQUIRE_PCSC") == "1":
            pytest.fail(f"{why} (required because KONBINI_REQUIRE_PCSC=1)")
        pytest.skip(why)


@pytest.fixture
def card_path(tmp_path: Path) -> Path:
    return make_card(tmp_path / "card.json")


@pytest.fixture
def reader(vpcd_slot: VpcdSlot, card_path: Path) -> Iterator[VpcdSlot]:
    """The card in a vpcd reader, as pcscd sees it."""
    from cardreader.pcsc import wait_for_card, wait_for_removal

    assert wait_for_removal(vpcd_slot.reader, timeout=5.0)
    with VpcdBridge(VirtualCard(card_path), host=vpcd_slot.host, port=vpcd_slot.port):
        assert wait_for_card(vpcd_slot.reader, timeout=5.0)
        yield vpcd_slot


def _run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    run = subprocess.run(args, input=stdin, capture_output=True, timeout=60, check=False)
    assert run.returncode == 0, f"{args[0]} failed: {run.stderr.decode(errors='replace')}"
    return run


def _reader_number(reader: VpcdSlot) -> str:
    """OpenSC numbers readers in PC/SC's order."""
    from cardreader.pcsc import list_readers

    return str(list_readers().index(reader.reader))


def _auth_token_slot(reader: VpcdSlot) -> str:
    """The PKCS#11 slot id of the auth-PIN token of our reader (one token per PIN)."""
    listing = _run("pkcs11-tool", "--module", str(_pkcs11_module()), "--list-slots").stdout.decode()
    for block in re.split(r"\n(?=Slot \d+)", listing):
        header = re.match(r"Slot \d+ \((0x[0-9a-f]+)\): (.*)", block)
        if header and header.group(2).strip() == reader.reader and "User Authentication PIN" in block:
            return header.group(1)
    raise AssertionError(f"no auth token for {reader.reader} in:\n{listing}")


def test_opensc_sees_the_card_in_its_reader(reader: VpcdSlot) -> None:
    listing = _run("opensc-tool", "--list-readers").stdout.decode()
    line = next(line for line in listing.splitlines() if line.rstrip().endswith(reader.reader))
    assert re.match(r"\s*\d+\s+Yes\b", line), listing


def test_pkcs15_tool_lists_the_user_auth_certificate_and_pins(reader: VpcdSlot) -> None:
    dump = _run("pkcs15-tool", "--reader", _reader_number(reader), "-D").stdout.decode()
    assert "X.509 Certificate [User Authentication Certificate]" in dump
    assert "PIN [User Authentication PIN]" in dump
    assert re.search(r"User Authentication PIN\].*?Tries left\s*:\s*3", dump, re.S)


def pkcs11_sign_command(reader: VpcdSlot, message: Path, signature: Path) -> tuple[str, ...]:
    """pkcs11-tool signing `message` with the auth key (SHA256-RSA-PKCS) into `signature`,
    logged in with the synthetic test card's PIN."""
    return (
        "pkcs11-tool",
        "--module",
        str(_pkcs11_module()),
        "--slot",
        _auth_token_slot(reader),
        "--login",
        "--pin",
        PIN,
        "--sign",
        "--mechanism",
        "SHA256-RSA-PKCS",
        "--id",
        "01",
        "--input-file",
        str(message),
        "--output-file",
        str(signature),
    )


def test_pkcs15_tool_reads_back_exactly_the_auth_certificate(reader: VpcdSlot, card_path: Path) -> None:
    pem = _run("pkcs15-tool", "--reader", _reader_number(reader), "--read-certificate", "1").stdout.decode()
    body = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", pem, re.S)
    assert body, pem
    assert base64.b64decode("".join(body.group(1).split())) == CardFile.load(card_path).auth_certificate


def test_pkcs11_tool_signs_with_the_auth_key_and_the_signature_verifies(
    reader: VpcdSlot, card_path: Path, tmp_path: Path
) -> None:
    message = tmp_path / "challenge.bin"
    message.write_bytes(b"konbini challenge for the auth key")
    signature_file = tmp_path / "signature.bin"
    _run(*pkcs11_sign_command(reader, message, signature_file))
    public_key = x509.load_der_x509_certificate(CardFile.load(card_path).auth_certificate).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(signature_file.read_bytes(), message.read_bytes(), padding.PKCS1v15(), hashes.SHA256())


def test_pkcs11_tool_with_a_wrong_pin_fails_and_costs_a_try(reader: VpcdSlot) -> None:
    run = subprocess.run(
        [
            "pkcs11-tool",
            "--module",
            str(_pkcs11_module()),
            "--slot",
            _auth_token_slot(reader),
            "--login",
            "--pin",
            "9999",
            "--list-objects",
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert run.returncode != 0
    assert b"CKR_PIN_INCORRECT" in run.stderr + run.stdout
    dump = _run("pkcs15-tool", "--reader", _reader_number(reader), "--list-pins").stdout.decode()
    assert re.search(r"User Authentication PIN\].*?Tries left\s*:\s*2", dump, re.S), dump
