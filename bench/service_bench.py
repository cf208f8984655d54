"""Throughput and latency of the kiosk API: complete transactions per second (start ->
authenticate -> order -> pay -> list + fetch documents -> printed) against one server
(uvicorn on 127.0.0.1, SQLite, `certserver init --demo` data), and p50/p99 latencies at N
concurrent kiosks.

Document rendering is STUBBED in this benchmark only (a fixed small "PDF"), so the figures
measure the transaction service, the database and HTTP; bench/documents_bench.py measures
rendering. The output says so. The server runs in its own process (so the load generator
does not share its interpreter); its clock is shifted into kiosk hours (a weekday 10:00 JST)
when the bench runs outside them, and the output says so too. The load generator is
konbini_testkit/lean_http.py (one keep-alive connection per kiosk), not httpx, whose own cost per
request used to be larger than the floor server's; its CPU per transaction is printed.

    python bench/service_bench.py [--kiosks 50] [--seconds 10] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from konbini_testkit.lean_http import LeanConnection, LeanHttpError, LeanResponse

if TYPE_CHECKING:  # the packages are imported where used, in the process that needs them
    from fastapi import FastAPI

    from certserver.documents.content import CertificateContent

# -- the server side (runs in a child process) ----------------------------------------------


@dataclass(frozen=True)
class StubDocument:
    pdf: bytes
    sha256: str


class StubRenderer:
    """BENCH ONLY: stands in for certserver.documents.service.DocumentService."""

    def render(self, content: CertificateContent) -> StubDocument:
        pdf = b"%PDF-1.7\n% benchmark stub, not a certificate\n" + content.certificate_number.encode()
        return StubDocument(pdf, hashlib.sha256(pdf).hexdigest())


def _clock_offset() -> dt.timedelta:
    """Zero when the service is surely open now, else the shift to the next moment it is
    (a weekday 10:00 JST outside the year-end closure)."""
    from certserver.services.rules.calendar import next_surely_open

    now = dt.datetime.now(dt.UTC)
    return next_surely_open(now) - now


def bench_app() -> FastAPI:
    """uvicorn factory of the bench server: the real app, stub renderer, shifted clock."""
    from certserver.app import create_app
    from certserver.config import Settings

    offset = dt.timedelta(seconds=float(os.environ["BENCH_CLOCK_OFFSET"]))
    return create_app(Settings(), clock=lambda: dt.datetime.now(dt.UTC) + offset, renderer=StubRenderer())


def _spend_cpu(seconds: float) -> None:
    """Busy Python work for `seconds` of this thread's CPU time (holding the GIL, like the
    service's own work per request)."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def floor_app() -> FastAPI:
    """The floor: the same seven requests answered by empty FastAPI routes (sync, like
    ours), with no database, no rules and no checks. What HTTP, FastAPI and this load
    generator cost on this machine; the service can only be slower.

    With BENCH_FLOOR_WORK_MS set, each route first spends that much CPU in Python: how
    throughput falls with the work a request does beyond HTTP (--floor-work-ms)."""
    from fastapi import FastAPI, Response

    work = float(os.environ.get("BENCH_FLOOR_WORK_MS", "0")) / 1000
    app = FastAPI()
    pdf = b"%PDF-1.7\n% floor\n"
    doc = {"document_id": "d", "sha256": hashlib.sha256(pdf).hexdigest()}
    challenge = base64.b64encode(os.urandom(32)).decode()
    menu = {"menu": {"municipalities": [{"code": "08217", "role": "jushochi"}]}}

    @app.post("/api/v1/transactions", status_code=201)
    def start() -> dict:
        _spend_cpu(work)
        return {"transaction_id": "t", "challenge": challenge}

    @app.post("/api/v1/transactions/{tid}/authenticate")
    def authenticate(tid: str, body: dict) -> dict:
        _spend_cpu(work)
        return menu

    @app.post("/api/v1/transactions/{tid}/order")
    def order(tid: str, body: dict) -> dict:
        _spend_cpu(work)
        return {"fee_total_yen": 300}

    @app.post("/api/v1/transactions/{tid}/payment")
    def payment(tid: str, body: dict) -> dict:
        _spend_cpu(work)
        return {"paid_yen": body.get("amount_yen")}

    @app.get("/api/v1/transactions/{tid}/documents")
    def documents(tid: str) -> dict:
        _spend_cpu(work)
        return {"documents": [doc]}

    @app.get("/api/v1/transactions/{tid}/documents/{did}")
    def document(tid: str, did: str) -> Response:
        _spend_cpu(work)
        return Response(pdf, media_type="application/pdf")

    @app.post("/api/v1/transactions/{tid}/printed")
    def printed(tid: str) -> dict:
        _spend_cpu(work)
        return {"state": "completed"}

    @app.get("/api/v1/health")
    def health() -> dict:
        return {"status": "ok"}

    return app


def serve(port: int, floor: bool = False) -> None:
    """One server process (one uvicorn worker) on 127.0.0.1:`port`."""
    import uvicorn

    app = floor_app() if floor else bench_app()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, backlog=2048)


# -- the load generator ---------------------------------------------------------------------


@dataclass(frozen=True)
class BenchCard:
    resident_id: str
    der: bytes
    key: rsa.RSAPrivateKey

    def sign(self, challenge: bytes) -> bytes:
        return self.key.sign(challenge, padding.PKCS1v15(), hashes.SHA256())


def _prepare(data_dir: Path, kiosks: int) -> tuple[list[BenchCard], dict[str, str]]:
    """`certserver init --demo`, the usable cards with their keys pre-loaded, and kiosks."""
    from certserver.cli.init_cmd import initialise
    from certserver.config import Settings
    from certserver.db.session import make_engine, make_session_factory, transaction
    from certserver.demo.cards import read_index
    from certserver.services.kiosks import register_kiosk

    settings = Settings(data_dir=data_dir)
    initialise(settings, demo=True, progress=lambda _line: None)
    cards = []
    for entry in read_index(settings.cards_dir):
        if not entry.expect.startswith("issued"):
            continue  # demo people the rules refuse (moved out, DV support ...)
        raw = json.loads((settings.cards_dir / entry.file).read_text(encoding="utf-8"))["jpki"]
        key = serialization.load_pem_private_key(raw["auth_private_key"].encode(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        cards.append(BenchCard(entry.resident_id, base64.b64decode(raw["auth_certificate"]), key))
    engine = make_engine(settings.resolved_database_url)
    credentials = {}
    with transaction(make_session_factory(engine)) as session:
        for i in range(kiosks):
            credential = register_kiosk(session, f"BENCH-{i:03d}", f"bench store {i}", dt.datetime.now(dt.UTC))
            credentials[credential.kiosk_id] = credential.bearer
    engine.dispose()
    return cards, credentials


@dataclass
class Stats:
    transactions: list[float]  # seconds per complete transaction
    requests: list[float]  # seconds per HTTP request
    failures: int = 0


async def _transaction(client: LeanConnection, card: BenchCard, stats: Stats) -> bool:
    timings = []

    async def call(method: str, url: str, json: object = None) -> LeanResponse:
        t0 = time.perf_counter()
        response = await client.request(method, url, json=json)
        timings.append(time.perf_counter() - t0)
        return response

    t0 = time.perf_counter()
    started = await call("POST", "/api/v1/transactions")
    if started.status_code != 201:
        return False
    tx = started.json()
    base = f"/api/v1/transactions/{tx['transaction_id']}"
    signature = card.sign(base64.b64decode(tx["challenge"]))
    auth = await call(
        "POST",
        f"{base}/authenticate",
        json={"certificate": base64.b64encode(card.der).decode(), "signature": base64.b64encode(signature).decode()},
    )
    if auth.status_code != 200:
        return False
    home = auth.json()["menu"]["municipalities"][0]
    ordered = await call(
        "POST", f"{base}/order", json={"municipality_code": home["code"], "role": home["role"], "kind": "juminhyo"}
    )
    if ordered.status_code != 200:
        return False
    paid = await call("POST", f"{base}/payment", json={"amount_yen": ordered.json()["fee_total_yen"]})
    documents = (await call("GET", f"{base}/documents")).json()["documents"] if paid.status_code == 200 else []
    for doc in documents:
        pdf = await call("GET", f"{base}/documents/{doc['document_id']}")
        if hashlib.sha256(pdf.content).hexdigest() != doc["sha256"]:
            return False
    done = await call("POST", f"{base}/printed")
    if done.status_code != 200 or not documents:
        return False
    stats.transactions.append(time.perf_counter() - t0)
    stats.requests.extend(timings)
    return True


async def _kiosk(url: str, bearer: str, cards: list[BenchCard], index: int, deadline: float, stats: Stats) -> None:
    """One kiosk: one keep-alive connection (the lean client: httpx's own per-request cost
    used to be the limit of this bench), transactions back to back until the deadline."""
    async with await LeanConnection.open_url(url, headers={"Authorization": bearer}, timeout=60) as client:
        n = index
        while time.perf_counter() < deadline:
            try:
                ok = await _transaction(client, cards[n % len(cards)], stats)
            except LeanHttpError:  # a malformed response or a timeout; the client reconnects
                ok = False
            if not ok:
                stats.failures += 1
            n += 1


async def _load(
    urls: list[str], credentials: dict[str, str], cards: list[BenchCard], seconds: float
) -> tuple[Stats, float]:
    """Every kiosk running transactions for `seconds`, the kiosks spread round-robin over the
    servers (what a balancer in front of several workers would do)."""
    stats = Stats([], [])
    start = time.perf_counter()
    await asyncio.gather(
        *(
            _kiosk(urls[i % len(urls)], bearer, cards, i, start + seconds, stats)
            for i, bearer in enumerate(credentials.values())
        )
    )
    return stats, time.perf_counter() - start


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(url: str, process: subprocess.Popen) -> None:
    from konbini_testkit.processkit import ServiceNotReadyError, wait_until_healthy

    try:
        wait_until_healthy(url, process)
    except ServiceNotReadyError as exc:
        raise SystemExit(f"bench server: {exc}") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kiosks", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes on one SQLite file, kiosks spread round-robin (default 1)",
    )
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)  # the child serves the floor
    parser.add_argument(
        "--floor-work-ms",
        type=float,
        nargs="*",
        default=[0.25],
        metavar="MS",
        help="also measure the floor with this much Python CPU work in each request: the "
        "budget a request has beyond HTTP for a given throughput (default 0.25)",
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.floor)
        return
    with tempfile.TemporaryDirectory(prefix="service-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        t0 = time.perf_counter()
        cards, credentials = _prepare(data_dir, args.kiosks)
        print(
            f"prepared `certserver init --demo` data, {len(cards)} usable demo cards, {args.kiosks} kiosks "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        offset = _clock_offset()
        env = {
            **os.environ,
            "CERTSERVER_DATA_DIR": str(data_dir),
            "CERTSERVER_WORKERS": str(args.workers),
            "BENCH_CLOCK_OFFSET": str(offset.total_seconds()),
            "PYTHONPATH": os.pathsep.join(sys.path),
        }
        stats, elapsed, server_cpu, generator_cpu = _measure(
            env, credentials, cards, args.seconds, args.workers, floor=False
        )
        floor, floor_elapsed, floor_cpu, floor_generator_cpu = _measure(
            env, credentials, cards, args.seconds, 1, floor=True
        )
        budget = []
        for work_ms in args.floor_work_ms:
            worked, worked_elapsed, worked_cpu, _ = _measure(
                {**env, "BENCH_FLOOR_WORK_MS": str(work_ms)}, credentials, cards, args.seconds, 1, floor=True
            )
            budget.append(
                (
                    work_ms,
                    len(worked.transactions) / worked_elapsed,
                    worked_cpu / len(worked.transactions) if worked_cpu and worked.transactions else None,
                )
            )
    done = len(stats.transactions)
    print(
        "NOTE: document rendering is STUBBED in this benchmark (fixed small PDF); "
        "see bench/documents_bench.py for rendering throughput."
    )
    if offset:
        print(f"NOTE: the server's clock was shifted by {offset} into kiosk hours (weekday 10:00 JST).")
    print(
        f"server: {args.workers} uvicorn process(es) on 127.0.0.1 sharing one SQLite file (WAL), {os.cpu_count()} CPU(s)"
    )
    print(f"concurrent kiosks: {args.kiosks}, measured for {elapsed:.1f} s")
    print(f"complete transactions: {done} ({done / elapsed:.1f}/s), failed: {stats.failures}")
    print(f"HTTP requests: {len(stats.requests)} ({len(stats.requests) / elapsed:.0f}/s, 7 per transaction)")
    for label, values in (("transaction (7 requests)", stats.transactions), ("single request", stats.requests)):
        print(
            f"latency of a {label}: p50 {1000 * _percentile(values, 50):.1f} ms, "
            f"p99 {1000 * _percentile(values, 99):.1f} ms"
        )
    if server_cpu is not None and done:
        print(f"server CPU per transaction: {1000 * server_cpu / done:.1f} ms")
    if done:
        print(
            f"load generator CPU per transaction: {1000 * generator_cpu / done:.1f} ms "
            f"(server {_cores(server_cpu, elapsed)} cores, load generator {generator_cpu / elapsed:.2f} cores)"
        )
    floor_done = len(floor.transactions)
    print(
        f"floor (the same 7 requests to empty FastAPI routes, same lean keep-alive load generator "
        f"(konbini_testkit/lean_http.py), same run): {floor_done / floor_elapsed:.1f} transactions/s, "
        f"p99 {1000 * _percentile(floor.transactions, 99):.1f} ms"
        + (f", server CPU {1000 * floor_cpu / floor_done:.1f} ms/transaction" if floor_cpu and floor_done else "")
        + (f", load generator CPU {1000 * floor_generator_cpu / floor_done:.1f} ms/transaction" if floor_done else "")
    )
    if floor_done:
        print(f"service / floor: {(done / elapsed) / (floor_done / floor_elapsed):.2f}")
    for work_ms, rate, cpu in budget:
        print(
            f"floor with {work_ms:g} ms of Python work in each request ({7 * work_ms:g} ms per transaction): "
            f"{rate:.1f} transactions/s" + (f", server CPU {1000 * cpu:.1f} ms/transaction" if cpu else "")
        )
    if done and server_cpu:
        print(
            f"the service spends {1000 * (server_cpu / done - (floor_cpu or 0) / max(floor_done, 1)) / 7:.2f} ms "
            "of CPU per request beyond the floor"
        )
    print("goal: >= 500 transactions/s and p99 < 100 ms at 50 kiosks (2-core machine, SQLite)")


def _cores(cpu_seconds: float | None, elapsed: float) -> str:
    return "?" if cpu_seconds is None else f"{cpu_seconds / elapsed:.2f}"


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(
    env: dict[str, str],
    credentials: dict[str, str],
    cards: list[BenchCard],
    seconds: float,
    workers: int,
    *,
    floor: bool,
) -> tuple[Stats, float, float | None, float]:
    """`workers` server children (the service, or the floor), each one uvicorn worker on its
    own port, warmed up, then loaded for `seconds`.

    Not `uvicorn --workers N`: its shared socket is bound with proto 0, so asyncio never sets
    TCP_NODELAY on accepted connections (Kludex/uvicorn#3149), and whichever worker is awake
    accepts most of the kiosks' keep-alive connections. Returns the stats, the elapsed time,
    the servers' CPU seconds and this process's (the load generator's) CPU seconds over the
    measured window."""
    ports = [_free_port() for _ in range(workers)]
    servers = [
        subprocess.Popen([sys.executable, __file__, "--serve", str(port)] + (["--floor"] if floor else []), env=env)
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url, server in zip(urls, servers, strict=True):
            _wait_ready(url, server)
        asyncio.run(_load(urls, credentials, cards, min(2.0, seconds)))  # warm-up
        before = [_cpu_seconds(server.pid) for server in servers]
        generator_before = time.process_time()
        stats, elapsed = asyncio.run(_load(urls, credentials, cards, seconds))
        generator_cpu = time.process_time() - generator_before
        after = [_cpu_seconds(server.pid) for server in servers]
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=30)
    known = [end - start for end, start in zip(after, before, strict=True) if end is not None and start is not None]
    cpu = sum(known) if len(known) == len(servers) else None
    return stats, elapsed, cpu, generator_cpu


if __name__ == "__main__":
    main()
