"""The pytest plugin (entry point `pytest11`: installed with the project, active in every
pytest run of its environment). Fixtures:

- `konbini_service`: the issuing service (`KonbiniService`) on demo data made once per
  session by `certserver init --demo --seed N` (ini option `konbini_seed`, default 0) and
  copied per test; on PostgreSQL for tests marked `konbini_postgres`.
- `virtual_card`: a factory, `virtual_card("toride-0001")` (a demo resident's card),
  `virtual_card("toride-0001", issue=True, pin="4321")` (a new card issued for the test) or
  `virtual_card(path=CARDFILE, pin=...)`; `transport="auto"` puts it in a vpcd reader when
  pcscd runs and in-process otherwise, "pcsc" skips the test without pcscd, "inprocess"
  never uses it. Cards are taken out after the test.
- `kiosk_driver`: a factory, `kiosk_driver(card)` -> `HarnessKiosk` with its own kiosk
  credential on `konbini_service`.

Skips say why: no pcscd with the vpcd driver, no PostgreSQL (CERTSERVER_TEST_POSTGRES_URL).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from konbini_pytest.card import HarnessCard
    from konbini_pytest.kiosk import HarnessKiosk
    from konbini_pytest.service import KonbiniService
    from konbini_testkit.vpcd import VpcdSlot

POSTGRES_VARIABLE = "CERTSERVER_TEST_POSTGRES_URL"
NO_PCSCD = "pcscd with the vsmartcard vpcd driver is not running (virtual_card(transport='pcsc') needs it)"
NO_POSTGRES = f"no PostgreSQL: {POSTGRES_VARIABLE} is not set (konbini_postgres)"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("konbini_seed", "seed of konbini_service's demo data (certserver init --demo --seed)", default="0")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"konbini_postgres: run konbini_service on PostgreSQL (needs {POSTGRES_VARIABLE})"
    )


def pcscd_ready() -> bool:
    """Whether pcscd runs with the vpcd driver listening on its ports."""
    from konbini_testkit.vpcd import VPCD_PORTS

    if not Path("/run/pcscd/pcscd.comm").exists():
        return False
    listening = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=False).stdout
    return all(f":{port} " in listening for port in VPCD_PORTS)


# -- the service --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def konbini_demo_data(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    """The demo data folder every konbini_service copies (made once per session)."""
    from konbini_pytest.service import make_demo

    seed = int(pytestconfig.getini("konbini_seed"))
    return make_demo(tmp_path_factory.mktemp("konbini-demo") / "data", seed=seed)


def _postgres_database() -> Iterator[str]:
    from konbini_testkit.postgres import scratch_database

    base = os.environ.get(POSTGRES_VARIABLE)
    if not base:
        pytest.skip(NO_POSTGRES)
    with scratch_database(base, "konbini_") as url:
        yield url


@pytest.fixture
def konbini_service(
    request: pytest.FixtureRequest, tmp_path: Path, pytestconfig: pytest.Config
) -> Iterator[KonbiniService]:
    """The issuing service as a real `certserver serve` process for this test."""
    from konbini_pytest.service import KonbiniService, copy_data, make_demo

    if request.node.get_closest_marker("konbini_postgres") is not None:
        databases = _postgres_database()
        database_url = next(databases)
        folder = make_demo(
            tmp_path / "konbini-data", seed=int(pytestconfig.getini("konbini_seed")), database_url=database_url
        )
    else:
        databases, database_url = iter(()), None
        folder = copy_data(request.getfixturevalue("konbini_demo_data"), tmp_path / "konbini-data")
    service = KonbiniService(folder, database_url=database_url)
    service.start()
    try:
        yield service
    finally:
        service.stop()
        for _ in databases:  # drops the PostgreSQL database
            pass


# -- cards ----------------------------------------------------------------------------------


def _lock_slot(timeout: float = 120.0) -> tuple[VpcdSlot, int]:
    """A vpcd reader for this test alone (shared locks with every other run on the machine)."""
    from konbini_testkit.processkit import vpcd_lock
    from konbini_testkit.vpcd import VPCD_PORTS, VpcdSlot

    deadline = time.monotonic() + timeout
    while True:
        for index, port in enumerate(VPCD_PORTS):
            fd = vpcd_lock(port, wait=False)
            if fd is not None:
                return VpcdSlot(f"Virtual PCD 00 {index:02d}", port), fd
        if time.monotonic() > deadline:
            pytest.fail(f"no vpcd reader was free within {timeout:.0f} s")
        time.sleep(0.1)


CardFactory = Callable[..., "HarnessCard"]


def _demo_card_copy(demo_data: Path, resident: str, folder: Path) -> tuple[Path, str]:
    """A private copy of a demo resident's card file, and its demo PIN. Raises ValueError
    (no demo card for that resident)."""
    import shutil

    from kiosk.democards import read_index

    entries = {e.resident_id: e for e in read_index(demo_data / "cards")}
    if resident not in entries:
        raise ValueError(_no_demo_card(resident, entries))
    entry = entries[resident]
    copy = folder / f"card-{resident}.json"
    if not copy.exists():
        shutil.copy2(entry.path, copy)
    return copy, entry.pin


def _no_demo_card(resident: str, known: Mapping[str, object]) -> str:
    return f"no demo card for {resident!r}; the demo residents with a card: {', '.join(sorted(known))}"


@pytest.fixture
def virtual_card(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CardFactory]:
    """A factory of virtual cards for this test (see the module's docstring)."""
    from konbini_pytest.card import HarnessCard

    made: list[HarnessCard] = []
    locks: list[int] = []

    def make(
        resident: str = "toride-0001",
        *,
        issue: bool = False,
        pin: str | None = None,
        password: str = "ABC123",
        path: Path | None = None,
        transport: str = "auto",
    ) -> HarnessCard:
        if transport not in ("auto", "pcsc", "inprocess"):
            raise ValueError("transport must be auto, pcsc or inprocess")
        if transport == "pcsc" and not pcscd_ready():
            pytest.skip(NO_PCSCD)
        if path is None and (issue or "konbini_service" in request.fixturenames):
            service: KonbiniService = request.getfixturevalue("konbini_service")
            if issue:
                pin = pin or "1234"
                path = service.issue_card(
                    resident, tmp_path / f"{resident}-{len(made)}.json", pin=pin, password=password
                )
            else:
                cards = service.demo_cards()
                if resident not in cards:
                    raise ValueError(_no_demo_card(resident, cards))
                entry = cards[resident]
                path, pin = entry.path, pin or entry.pin
        elif path is None:
            # A test of card software alone: a copy of the demo card, no service started.
            path, demo_pin = _demo_card_copy(request.getfixturevalue("konbini_demo_data"), resident, tmp_path)
            pin = pin or demo_pin
        elif pin is None:
            raise ValueError("a card given by its path needs its pin=")
        slot = None
        if transport == "pcsc" or (transport == "auto" and pcscd_ready()):
            slot, fd = _lock_slot()
            locks.append(fd)
        card = HarnessCard(path, pin, slot=slot)
        made.append(card)
        return card

    try:
        yield make
    finally:
        for card in made:
            card.close()
        for fd in locks:
            os.close(fd)


# -- the kiosk ------------------------------------------------------------------------------


@pytest.fixture
def kiosk_driver(konbini_service: KonbiniService, tmp_path: Path) -> Iterator[Callable[[HarnessCard], HarnessKiosk]]:
    """A factory: `kiosk_driver(card)`, the headless kiosk on that card and konbini_service."""
    from konbini_pytest.kiosk import HarnessKiosk

    kiosks: list[HarnessKiosk] = []

    def make(card: HarnessCard) -> HarnessKiosk:
        kiosk = HarnessKiosk(konbini_service.url, konbini_service.new_kiosk(), card, tmp_path / f"kiosk-{len(kiosks)}")
        kiosks.append(kiosk)
        return kiosk

    try:
        yield make
    finally:
        for kiosk in kiosks:
            kiosk.close()
