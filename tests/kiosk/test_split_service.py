"""分散管理 with the stores apart: `certserver init --demo --split` lays out the centre's store
(kiosks, transactions, JPKI records) and the municipalities' (their registries) in folders
of their own, and `certserver serve` runs the centre and the municipalities' certificate
server as two processes linked by mutual TLS.

After a mixed load through the kiosk API (every demo card, every kind of certificate, both
roles, a cancel and an abandoned order), every file of the centre's folder (its database,
WAL and shared memory) and everything both processes logged are searched, as UTF-8 bytes,
for every demo resident's name (with and without its space), kana, address, previous
address, 本籍, 通称, birth date in two forms, My Number, and the 戸籍 names: zero hits. The
municipalities' store holds them (the search finds them there, so it can find them). Killed
outright, the centre takes the certificate server down with it.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from servicekit import Service, load_cards, open_moment
from sqlalchemy import text
from test_centre_records_name_nobody import _ordered_then, _personal_strings, _visits

from certserver.cli.init_cmd import initialise
from certserver.config import Settings
from certserver.db.session import make_engine, make_session_factory, transaction
from certserver.services.kiosks import register_kiosk

KIOSK_ID = "SPLIT-KIOSK-01"
START_SECONDS = 60.0


def _free_port_pair() -> int:
    """A port whose next port is free too (the certificate server takes port + 1)."""
    import socket

    for _ in range(50):
        with socket.socket() as first, socket.socket() as second:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise RuntimeError("no free pair of ports")


class SplitService(Service):
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture
def split_service(tmp_path: Path) -> Iterator[SplitService]:
    folder = tmp_path / "data"
    moment = dt.datetime.now(dt.UTC).replace(microsecond=0)
    initialise(Settings(data_dir=folder), demo=True, split=True, progress=lambda _line: None, now=moment)
    settings = Settings(data_dir=folder)
    engine = make_engine(settings.resolved_database_url)  # the centre's store
    with transaction(make_session_factory(engine)) as session:
        credential = register_kiosk(session, KIOSK_ID, "テスト店", moment)
    engine.dispose()
    port = _free_port_pair()
    start = open_moment(moment)
    log = tmp_path / "serve.log"
    command = [sys.executable, "-m", "certserver", "serve", "--data-dir", str(folder), "--port", str(port)]
    command += ["--render-processes", "0", "--pretend-time", start.isoformat()]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url, process, log)
        began = time.monotonic()
        service = SplitService(
            url,
            folder,
            credential.kiosk_id,
            credential.secret,
            load_cards(folder / "cards"),
            settings,
            lambda: start + dt.timedelta(seconds=time.monotonic() - began),
        )
        service.process, service.log = process, log
        yield service
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def _wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"certserver serve ended: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"certserver serve did not answer: {log.read_text()[-2000:]}")


def _municipal_rows(service: Service, statement):  # type: ignore[no-untyped-def]
    engine = make_engine(service.settings.for_role("municipalities").resolved_database_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            return list(session.execute(statement))
    finally:
        engine.dispose()


def _found_in(folder: Path, personal: set[str]) -> dict[str, list[str]]:
    """For each file under `folder`, the personal strings its bytes contain."""
    hits: dict[str, list[str]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found = sorted(p for p in personal if p.encode() in data)
        if found:
            hits[path.name] = found
    return hits


@pytest.mark.slow
def test_the_centres_store_and_the_logs_name_nobody_with_the_stores_apart(
    split_service: SplitService, tmp_path: Path
) -> None:
    visits = _visits(split_service, tmp_path)
    _ordered_then(split_service, "cancel")
    _ordered_then(split_service, "abandon")

    states = {row[0] for row in split_service.query(text("SELECT state FROM transactions"))}
    issued = split_service.query(text("SELECT count(*) FROM documents WHERE status = 'issued'"))[0][0]
    assert visits >= 30 and issued >= 10 and {"printed", "cancelled"} <= states
    assert split_service.query(text("SELECT count(*) FROM residents"))[0][0] == 0  # the centre has no registry
    personal = _personal_strings(lambda statement: _municipal_rows(split_service, statement))
    assert len(personal) >= 40

    centre = split_service.data_dir / "centre"
    assert {p.name for p in centre.iterdir()} >= {"certserver.db"}
    searched = sum(p.stat().st_size for p in centre.rglob("*") if p.is_file())
    print(  # shown with -s
        f"\n{visits + 2} visits, {issued} documents printed; {len(personal)} personal strings searched in "
        f"{searched} bytes of the centre's folder and {split_service.log.stat().st_size} bytes of logs"
    )
    assert _found_in(centre, personal) == {}
    logged = split_service.log.read_bytes()
    assert "certificate server answers" in logged.decode()  # the log is the two processes'
    assert sorted(p for p in personal if p.encode() in logged) == []
    # The search can find what is there: the municipalities' store names its residents.
    assert _found_in(split_service.data_dir / "municipalities", personal)


@pytest.mark.slow
def test_the_certificate_server_ends_with_a_centre_killed_outright(split_service: SplitService) -> None:
    server = subprocess.run(
        ["pgrep", "-f", f"serve municipalities --data-dir {split_service.data_dir}"],
        capture_output=True,
        text=True,
        check=False,
    )
    (pid,) = (int(line) for line in server.stdout.split())
    os.kill(split_service.process.pid, signal.SIGKILL)
    split_service.process.wait(timeout=10)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    pytest.fail("the certificate server outlived the centre that started it")


@pytest.mark.slow
def test_a_municipality_stopped_by_its_switch_refuses_while_the_other_keeps_issuing(
    split_service: SplitService, tmp_path: Path
) -> None:
    """取手市 stops (its own store's switch, through its own command): a 取手 resident's 住民票
    is refused at the kiosk, nothing charged, while つくば市, their 本籍地, still issues
    their 戸籍 through the same centre."""
    from certserver.cli import main
    from kiosk.card import VirtualCardReader
    from kiosk.client import ClientSettings, ServiceClient
    from kiosk.driver import Driver, VisitScript
    from kiosk.flow import KioskFlow
    from kiosk.payment import CashAcceptor
    from kiosk.printer import Printer
    from kiosk.runner import EffectRunner

    folder = str(split_service.data_dir)
    assert main(["municipality", "stop", "08217", "--reason", "システム保守", "--data-dir", folder]) == 0
    card = split_service.card("toride-0001")
    settings = ClientSettings(split_service.url, split_service.kiosk_id, split_service.kiosk_secret, 30.0)
    results = {}
    with ServiceClient(settings) as client:
        for certificate, role in (("juminhyo", "jushochi"), ("koseki_zenbu", "honsekichi")):
            runner = EffectRunner(VirtualCardReader(str(card.path)), client, CashAcceptor(), Printer(tmp_path / role))
            script = VisitScript(pin=card.pin, certificate=certificate, municipality_role=role)
            results[role] = Driver(KioskFlow(), runner).visit(script)
    refused, issued = results["jushochi"], results["honsekichi"]
    assert refused.status == "error" and refused.paid == 0 and not refused.documents, refused
    assert issued.status == "issued" and len(issued.documents) == 1, issued
    assert refused.error_code == "municipality_stopped", refused
    states = split_service.query(text("SELECT state, paid_yen FROM transactions"))
    printed = [paid for state, paid in states if state == "printed"]
    assert printed == [issued.fee] and all(not paid for state, paid in states if state != "printed")


@pytest.mark.slow
def test_a_certificate_server_killed_mid_visit_under_load_costs_nobody_money_or_privacy(
    split_service: SplitService, tmp_path: Path
) -> None:
    """Four kiosks visit at once; the municipalities' certificate server is killed outright
    (SIGKILL) while they do. Every visit ends either printed, with its holder's own
    certificate, or refused with nothing paid; no transaction keeps a fee for an unprinted
    document; the centre goes on answering, and `certserver serve` starts the certificate
    server again."""
    import threading

    from pypdf import PdfReader

    from kiosk.card import VirtualCardReader
    from kiosk.client import ClientSettings, ServiceClient
    from kiosk.driver import Driver, VisitResult, VisitScript
    from kiosk.flow import KioskFlow
    from kiosk.payment import CashAcceptor
    from kiosk.printer import Printer
    from kiosk.runner import EffectRunner

    holders = ["toride-0001", "toride-0002", "toride-0003", "toride-0010"]
    results: list[tuple[str, VisitResult]] = []
    lock = threading.Lock()

    def kiosk(index: int, resident_id: str) -> None:
        card = split_service.card(resident_id)
        engine = make_engine(split_service.settings.resolved_database_url)
        with transaction(make_session_factory(engine)) as session:
            credential = register_kiosk(session, f"LOAD-{index}", "店", split_service.now())
        engine.dispose()
        settings = ClientSettings(split_service.url, credential.kiosk_id, credential.secret, 30.0)
        with ServiceClient(settings) as client:
            for visit in range(6):
                tray = tmp_path / f"{index}-{visit}"
                runner = EffectRunner(VirtualCardReader(str(card.path)), client, CashAcceptor(), Printer(tray))
                result = Driver(KioskFlow(), runner).visit(VisitScript(pin=card.pin))
                with lock:
                    results.append((resident_id, result))

    threads = [threading.Thread(target=kiosk, args=(i, r)) for i, r in enumerate(holders)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(results) < 4 and time.monotonic() < deadline:  # some visits done, the rest under way
        time.sleep(0.05)
    (pid,) = (
        int(line)
        for line in subprocess.run(
            ["pgrep", "-f", f"serve municipalities --data-dir {split_service.data_dir}"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
    )
    os.kill(pid, signal.SIGKILL)
    for thread in threads:
        thread.join(timeout=180)
    assert not any(t.is_alive() for t in threads)

    assert len(results) == 24
    issued = [(who, r) for who, r in results if r.status == "issued"]
    refused = [r for _, r in results if r.status != "issued"]
    codes = sorted({r.error_code or "" for r in refused})
    print(f"\n{len(issued)} visits printed, {len(refused)} refused after the kill ({', '.join(codes)})")  # -s
    assert issued and refused, [r.status for _, r in results]  # the kill fell mid-load
    for who, result in issued:
        name = split_service.card(who).name.replace("\u3000", "")
        text_of = "".join(p.extract_text() for p in PdfReader(result.documents[0]).pages).replace("\u3000", "")
        assert name.replace(" ", "") in text_of.replace(" ", ""), who
    assert all(r.paid == 0 or r.change == r.paid for r in refused), refused  # the cash went back
    rows = split_service.query(text("SELECT state, paid_yen, refunded_yen FROM transactions"))
    for state, paid, refunded in rows:
        assert state == "printed" or not paid or refunded == paid, (state, paid, refunded)
    assert httpx.get(f"{split_service.url}/api/v1/health", timeout=5).status_code == 200
    # `certserver serve` starts the certificate server again: the next person is served.
    assert "starting it again" in split_service.log.read_text()
    card = split_service.card("toride-0001")
    settings = ClientSettings(split_service.url, split_service.kiosk_id, split_service.kiosk_secret, 30.0)
    deadline = time.monotonic() + 60
    with ServiceClient(settings) as client:
        while True:
            runner = EffectRunner(
                VirtualCardReader(str(card.path)), client, CashAcceptor(), Printer(tmp_path / "after")
            )
            after = Driver(KioskFlow(), runner).visit(VisitScript(pin=card.pin))
            if after.status == "issued" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert after.status == "issued", after
