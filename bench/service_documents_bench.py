"""Signed documents per second: the render+sign floor against the real service, in one run.

1. The floor: `DocumentService.render` (layout + QR signature + PAdES, the pipeline the
   service uses) in one process, one thread, on the very 住民票 contents the kiosks order
   (each usable demo card holder, their 住所地, no options, one copy), and rendering alone
   (unsigned) beside it.
2. The service: the real app (real renderer, SQLite in WAL mode, `certserver init --demo`
   data) under uvicorn in child processes on 127.0.0.1 (--workers N: N one-worker servers,
   kiosks spread round-robin, see run_service), and K concurrent kiosks (one keep-alive
   connection each, through the lean client konbini_testkit/lean_http.py) running complete
   transactions (start -> authenticate -> order -> pay -> list + fetch documents ->
   printed), every fetched PDF checked against its sha256, a sample verified afterwards
   (signature, chain, QR). Server and load-generator CPU are printed, to show where the
   time goes; --profile writes a cProfile of the server (all threads, wall clock).
3. The ratio service / floor, and the goals: >= 100 signed documents/s for the floor, the
   service >= 0.8 of it. Floor, server and load generator share this machine's cores.

The server's clock is shifted into kiosk hours (a weekday 10:00 JST) when the bench runs
outside them, as in bench/service_bench.py, and the output says so.

    python bench/service_documents_bench.py [--kiosks 8] [--seconds 10] [--workers 1]
        [--floor-seconds SECONDS] [--database-url EMPTY_DB_URL] [--profile FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import dataclasses
import datetime as dt
import hashlib
import os
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from service_bench import BenchCard, _clock_offset, _cpu_seconds, _free_port, _prepare, _wait_ready
from sqlalchemy.engine import make_url

from konbini_testkit.lean_http import LeanConnection, LeanHttpError, LeanResponse

if TYPE_CHECKING:  # the packages are imported where used, in the process that needs them
    from fastapi import FastAPI

    from certserver.documents.content import CertificateContent

KIND = "juminhyo"  # 住民票の写し, what every bench transaction orders
FLOOR_GOAL = 100.0  # signed documents/s on the 2-core machine (issue 4)
RATIO_GOAL = 0.8  # the service's documents/s over the floor's
SAMPLE_VERIFIED = 20  # fetched PDFs verified after the run (outside the measured window)


# -- the server side (runs in a child process) ----------------------------------------------


def real_app() -> FastAPI:
    """uvicorn factory of the bench server: the real app and renderer, shifted clock.

    Certificates render in worker processes as under `certserver serve` (its default count),
    unless CERTSERVER_RENDER_PROCESSES says otherwise (0: in threads of the server process).
    """
    from certserver.app import create_app
    from certserver.config import Settings
    from certserver.documents.render_processes import default_render_processes

    offset = dt.timedelta(seconds=float(os.environ["BENCH_CLOCK_OFFSET"]))
    settings = Settings()
    if "CERTSERVER_RENDER_PROCESSES" not in os.environ:
        settings = settings.model_copy(update={"render_processes": default_render_processes()})
    mode = (
        f"in {settings.render_processes} render process(es) beside the server process"
        if settings.render_processes
        else "in threads of the server process (CERTSERVER_RENDER_PROCESSES=0)"
    )
    print(f"server (pid {os.getpid()}): certificates render {mode}", flush=True)
    return create_app(settings, clock=lambda: dt.datetime.now(dt.UTC) + offset)


def _profile_all_threads() -> list[cProfile.Profile]:
    """One profiler per thread (cProfile sees only the thread that enabled it): the main
    thread now, and each new thread (render pool, anyio workers) on its first call."""
    profiles = [cProfile.Profile()]

    def start_in_thread(*_args: object) -> None:
        profile = cProfile.Profile()
        profiles.append(profile)
        sys.setprofile(None)
        profile.enable()

    threading.setprofile(start_in_thread)
    profiles[0].enable()
    return profiles


def _stop(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def serve(port: int, profile_path: str | None) -> None:
    """One server process (one uvicorn worker) on 127.0.0.1:`port`, until SIGTERM."""
    import uvicorn

    # uvicorn shuts down gracefully on SIGTERM, then re-raises it: end here so the profile is written.
    signal.signal(signal.SIGTERM, _stop)
    profiles = _profile_all_threads() if profile_path else []
    try:
        uvicorn.run(real_app(), host="127.0.0.1", port=port, log_level="warning", access_log=False, backlog=2048)
    except KeyboardInterrupt:
        pass
    finally:
        if profile_path:
            threading.setprofile(None)
            for profile in profiles:
                profile.disable()
            stats = pstats.Stats(profiles[0])
            for profile in profiles[1:]:
                stats.add(profile)
            stats.dump_stats(profile_path)


# -- the floor (this process) ---------------------------------------------------------------


def _kiosk_contents(data_dir: Path, cards: list[BenchCard], now: dt.datetime) -> list:  # list[CertificateContent]
    """The contents the service renders for the bench orders: each card holder's 住民票 at
    their first municipality of the menu (as the kiosks order), no options, one copy."""
    from certserver.config import Settings
    from certserver.db.session import make_engine, make_session_factory
    from certserver.documents.content import CertificateKind
    from certserver.services.ordering import OrderRequest, menu_for, prepare_order

    engine = make_engine(Settings(data_dir=data_dir).resolved_database_url)
    contents = []
    try:
        with make_session_factory(engine)() as session:
            for card in cards:
                home = menu_for(session, card.resident_id, now).municipalities[0]
                order = OrderRequest(municipality_code=home.code, role=home.role, kind=CertificateKind(KIND))
                contents.append(prepare_order(session, card.resident_id, order, now).content)
    finally:
        engine.dispose()
    return contents


@dataclass(frozen=True)
class Rate:
    count: int
    wall: float
    cpu: float

    @property
    def per_second(self) -> float:
        return self.count / self.wall

    @property
    def cpu_ms_each(self) -> float:
        return 1000 * self.cpu / self.count


def _rate(seconds: float, work: Callable[[int], object]) -> Rate:
    work(0)  # warm caches
    count, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        count += 1
        work(count)
    return Rate(count, time.perf_counter() - start, time.process_time() - cpu_start)


def measure_floor(data_dir: Path, contents: list, seconds: float) -> tuple[Rate, Rate]:
    """(rendering alone, unsigned; DocumentService.render) on the bench contents."""
    from certserver.config import Settings
    from certserver.documents.layouts import layout_for
    from certserver.documents.qr import sign_payload
    from certserver.documents.render import render_pdf
    from certserver.documents.service import DocumentService, keywords_for
    from certserver.documents.signing import SignerStore

    store = SignerStore.open(Settings(data_dir=data_dir).ca_dir)
    service = DocumentService(store)

    def numbered(i: int) -> CertificateContent:
        content = contents[i % len(contents)]
        return dataclasses.replace(content, certificate_number=f"{content.issuer.code}-{i + 1:08d}")

    def render_only(i: int) -> bytes:
        content = numbered(i)
        qr = sign_payload(
            store.signer(content.issuer.code).qr_key,
            content.issuer.code,
            content.certificate_number,
            content.issued_on,
            content.content_hash(),
        ).text()
        return render_pdf(content, layout_for(content), qr, keywords_for(content, qr)).pdf

    return _rate(seconds, render_only), _rate(seconds, lambda i: service.render(numbered(i)))


# -- the load generator ---------------------------------------------------------------------

STEPS = ("start", "authenticate", "order", "payment", "documents", "fetch", "printed")


@dataclass
class Load:
    transactions: list[float] = field(default_factory=list)  # seconds per complete transaction
    steps: dict[str, list[float]] = field(default_factory=lambda: {step: [] for step in STEPS})
    documents: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    samples: list[bytes] = field(default_factory=list)  # fetched PDFs kept for verification

    def fail(self, reason: str) -> bool:
        self.failures[reason] = self.failures.get(reason, 0) + 1
        return False


class _StepError(Exception):
    """A request of a transaction step failed below HTTP (see `_transaction`)."""


async def _transaction(client: LeanConnection, card: BenchCard, load: Load) -> bool:
    """One complete transaction; True when it ended printed with every PDF intact."""
    timings: list[tuple[str, float]] = []

    async def call(step: str, method: str, url: str, json: object = None) -> LeanResponse:
        t0 = time.perf_counter()
        try:
            response = await client.request(method, url, json=json)
        except LeanHttpError as exc:  # a malformed response or a timeout: name the step
            raise _StepError(f"{step} {type(exc).__name__}") from exc
        timings.append((step, time.perf_counter() - t0))
        return response

    t0 = time.perf_counter()
    started = await call("start", "POST", "/api/v1/transactions")
    if started.status_code != 201:
        return load.fail(f"start {started.status_code}")
    tx = started.json()
    base = f"/api/v1/transactions/{tx['transaction_id']}"
    signature = card.sign(base64.b64decode(tx["challenge"]))
    auth = await call(
        "authenticate",
        "POST",
        f"{base}/authenticate",
        json={"certificate": base64.b64encode(card.der).decode(), "signature": base64.b64encode(signature).decode()},
    )
    if auth.status_code != 200:
        return load.fail(f"authenticate {auth.status_code}")
    home = auth.json()["menu"]["municipalities"][0]
    ordered = await call(
        "order", "POST", f"{base}/order", json={"municipality_code": home["code"], "role": home["role"], "kind": KIND}
    )
    if ordered.status_code != 200:
        return load.fail(f"order {ordered.status_code}")
    paid = await call("payment", "POST", f"{base}/payment", json={"amount_yen": ordered.json()["fee_total_yen"]})
    if paid.status_code != 200:
        return load.fail(f"payment {paid.status_code}")
    listed = await call("documents", "GET", f"{base}/documents")
    documents = listed.json()["documents"] if listed.status_code == 200 else []
    if not documents:
        return load.fail(f"documents {listed.status_code}, {len(documents)} listed")
    pdfs = []
    for doc in documents:
        pdf = await call("fetch", "GET", f"{base}/documents/{doc['document_id']}")
        if pdf.status_code != 200 or not pdf.content.startswith(b"%PDF-"):
            return load.fail(f"fetch {pdf.status_code}")
        if hashlib.sha256(pdf.content).hexdigest() != doc["sha256"]:
            return load.fail("sha256 mismatch")
        pdfs.append(pdf.content)
    done = await call("printed", "POST", f"{base}/printed")
    if done.status_code != 200:
        return load.fail(f"printed {done.status_code}")
    load.transactions.append(time.perf_counter() - t0)
    for step, seconds in timings:
        load.steps[step].append(seconds)
    load.documents += len(pdfs)
    if len(load.samples) < SAMPLE_VERIFIED:
        load.samples.append(pdfs[0])
    return True


async def _kiosk(url: str, bearer: str, cards: list[BenchCard], index: int, deadline: float, load: Load) -> None:
    """One kiosk: one keep-alive connection (konbini_testkit/lean_http.py, far cheaper per request than
    httpx), transactions back to back until the deadline."""
    async with await LeanConnection.open_url(url, headers={"Authorization": bearer}, timeout=60) as client:
        n = index
        while time.perf_counter() < deadline:
            try:
                await _transaction(client, cards[n % len(cards)], load)
            except _StepError as exc:  # counted by reason; the client reconnects
                load.fail(str(exc))
            n += 1


async def _run_load(
    urls: list[str], credentials: dict[str, str], cards: list[BenchCard], seconds: float
) -> tuple[Load, float]:
    """Every kiosk runs transactions for `seconds`; kiosk i talks to server i mod len(urls)."""
    load = Load()
    start = time.perf_counter()
    await asyncio.gather(
        *(
            _kiosk(urls[i % len(urls)], bearer, cards, i, start + seconds, load)
            for i, bearer in enumerate(credentials.values())
        )
    )
    return load, time.perf_counter() - start


def _process_tree(pid: int) -> list[int]:
    """`pid` and its live descendants (the render processes, under the fork server), from
    the parent pid of every process in /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # ended meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree = [pid]
    index = 0
    while index < len(tree):
        tree.extend(children.get(tree[index], ()))
        index += 1
    return tree


def _servers_cpu(servers: list[subprocess.Popen]) -> list[float]:
    """User + system CPU seconds of each server process with its render processes (Linux /proc)."""
    return [sum(_cpu_seconds(pid) or 0.0 for pid in _process_tree(server.pid)) for server in servers]  # 0: ended


def _machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot (Linux /proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def _percentile_ms(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return 1000 * values[0]
    return 1000 * statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _verify_samples(data_dir: Path, samples: list[bytes]) -> int:
    """How many of the sample PDFs fail verification (signature, chain, QR, metadata)."""
    from certserver.config import Settings
    from certserver.documents.verification import TrustStore, verify_pdf

    trust = TrustStore.from_ca_dir(Settings(data_dir=data_dir).ca_dir)
    return sum(not verify_pdf(pdf, trust).valid for pdf in samples)


# -- the run --------------------------------------------------------------------------------


@dataclass
class ServiceRun:
    load: Load
    elapsed: float
    server_cpu: float
    server_processes: list[float]  # CPU seconds of each server process
    generator_cpu: float
    machine_busy: float  # fraction of all CPUs busy during the measured window (any process)


def run_service(
    data_dir: Path, args: argparse.Namespace, offset: dt.timedelta, cards: list[BenchCard], credentials: dict[str, str]
) -> ServiceRun:
    """`--workers` server processes, each one uvicorn worker on its own port, under load.

    Not `uvicorn --workers N`: its shared socket is bound with proto 0, so asyncio never sets
    TCP_NODELAY on accepted connections and every small keep-alive response waits ~40 ms for
    the client's delayed ACK (Kludex/uvicorn#3149); and whichever worker is awake accepts the
    kiosks' burst of keep-alive connections (one worker took 0.80 cores, the other 0.16).
    Spreading the kiosks round-robin over the servers is what a balancer in front would do.
    """
    env = {
        **os.environ,
        "CERTSERVER_DATA_DIR": str(data_dir),
        "CERTSERVER_WORKERS": str(args.workers),
        "BENCH_CLOCK_OFFSET": str(offset.total_seconds()),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    ports = [_free_port() for _ in range(args.workers)]
    profile = ["--profile", str(Path(args.profile).resolve())] if args.profile else []
    servers = [subprocess.Popen([sys.executable, __file__, "--serve", str(port), *profile], env=env) for port in ports]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url, server in zip(urls, servers, strict=True):
            _wait_ready(url, server)
        asyncio.run(_run_load(urls, credentials, cards, min(2.0, args.seconds)))  # warm-up
        before, generator_cpu, machine = _servers_cpu(servers), time.process_time(), _machine_busy()
        load, elapsed = asyncio.run(_run_load(urls, credentials, cards, args.seconds))
        processes = [end - start for end, start in zip(_servers_cpu(servers), before, strict=True)]
        generator_cpu = time.process_time() - generator_cpu
        busy, total = (end - start for end, start in zip(_machine_busy(), machine, strict=True))
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=60)
    return ServiceRun(load, elapsed, sum(processes), processes, generator_cpu, busy / total if total else float("nan"))


def report(
    args: argparse.Namespace, offset: dt.timedelta, render: Rate, floor: Rate, run: ServiceRun, invalid: int
) -> bool:
    """Print the figures; True when every transaction and sample verification succeeded."""
    load, elapsed = run.load, run.elapsed
    done, docs = len(load.transactions), load.documents
    service_rate = docs / elapsed
    ratio = service_rate / floor.per_second
    print(f"\nfloor, one process, one thread, {floor.wall:.1f} s each ({KIND}, the kiosks' contents):")
    print(
        f"  rendering alone (layout + PDF + QR drawn, unsigned)   {render.per_second:7.1f} docs/s  "
        f"{render.cpu_ms_each:6.2f} ms cpu each (n={render.count})"
    )
    print(
        f"  render + QR signature + PAdES (DocumentService.render) {floor.per_second:7.1f} docs/s  "
        f"{floor.cpu_ms_each:6.2f} ms cpu each (n={floor.count})"
    )
    database = make_url(args.database_url).get_backend_name() if args.database_url else "SQLite (WAL)"
    print(
        f"\nservice: uvicorn on 127.0.0.1, {args.workers} worker(s), real renderer, {database}, "
        f"{args.kiosks} concurrent kiosks, measured for {elapsed:.1f} s"
    )
    print(
        f"  complete transactions: {done} ({done / elapsed:.1f}/s), documents fetched and sha256-checked: "
        f"{docs} ({service_rate:.1f}/s), failed: {sum(load.failures.values())} {load.failures or ''}"
    )
    print(
        f"  transaction latency: p50 {_percentile_ms(load.transactions, 50):.1f} ms, "
        f"p99 {_percentile_ms(load.transactions, 99):.1f} ms"
    )
    print(
        "  request latency p50/p99 ms: "
        + ", ".join(
            f"{step} {_percentile_ms(values, 50):.0f}/{_percentile_ms(values, 99):.0f}"
            for step, values in load.steps.items()
        )
    )
    if docs:
        print(
            f"  CPU per document: server {1000 * run.server_cpu / docs:.1f} ms (floor {floor.cpu_ms_each:.1f} ms), "
            f"load generator {1000 * run.generator_cpu / docs:.1f} ms"
        )
    per_process = " (" + " + ".join(f"{cpu / elapsed:.2f}" for cpu in run.server_processes) + ")"
    print(
        f"  CPU used during the run: server {run.server_cpu / elapsed:.2f} cores"
        f"{per_process if len(run.server_processes) > 1 else ''}, load generator "
        f"{run.generator_cpu / elapsed:.2f} cores; machine {run.machine_busy:.0%} busy (all processes)"
    )
    print(
        f"  sample documents verified (signature, chain, QR): {len(load.samples) - invalid}/{len(load.samples)} valid"
    )
    print(f"\nratio service / floor (documents/s, wall): {ratio:.2f}")
    print(
        f"goal: floor >= {FLOOR_GOAL:.0f} signed docs/s: {floor.per_second:.1f} "
        f"-> {'met' if floor.per_second >= FLOOR_GOAL else 'NOT met'}"
    )
    print(
        f"goal: service >= {RATIO_GOAL:.0%} of the floor: {ratio:.0%} -> {'met' if ratio >= RATIO_GOAL else 'NOT met'}"
    )
    print(
        f"NOTE: the floor, the server ({args.workers} worker(s)) and the load generator ({args.kiosks} kiosks "
        "on the lean keep-alive client konbini_testkit/lean_http.py, "
        f"signing challenges, hashing PDFs) all share this machine's {os.cpu_count()} CPU(s); "
        f"load average at the end {os.getloadavg()[0]:.2f}."
    )
    if args.workers > 1:
        print(
            f"NOTE: {args.workers} workers = {args.workers} one-worker uvicorn processes on their own ports, kiosks "
            "spread round-robin; not `uvicorn --workers` (no TCP_NODELAY there, Kludex/uvicorn#3149)."
        )
    if offset:
        print(f"NOTE: the server's clock was shifted by {offset} into kiosk hours (weekday 10:00 JST).")
    return not load.failures and not invalid and done > 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kiosks", type=int, default=8, help="concurrent kiosks (default 8)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured service run (default 10)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes, one uvicorn worker each, kiosks spread round-robin (default 1)",
    )
    parser.add_argument("--floor-seconds", type=float, help="each floor measurement (default: --seconds)")
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="an EMPTY database to use instead of a temporary SQLite file (e.g. PostgreSQL)",
    )
    parser.add_argument(
        "--profile", metavar="FILE", help="cProfile the server (all threads; --workers 1 only) into FILE (pstats)"
    )
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.profile)
        return 0
    if args.kiosks < 1 or args.seconds <= 0 or args.workers < 1:
        parser.error("--kiosks and --workers must be at least 1, --seconds positive")
    if args.profile and args.workers != 1:
        parser.error("--profile needs --workers 1 (it profiles the server process)")
    if args.database_url:
        os.environ["CERTSERVER_DATABASE_URL"] = args.database_url  # read by every Settings() here and in the server
    else:
        os.environ.pop("CERTSERVER_DATABASE_URL", None)
    with tempfile.TemporaryDirectory(prefix="service-documents-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        t0 = time.perf_counter()
        cards, credentials = _prepare(data_dir, args.kiosks)
        offset = _clock_offset()
        contents = _kiosk_contents(data_dir, cards, dt.datetime.now(dt.UTC) + offset)
        print(
            f"prepared `certserver init --demo` data, {len(cards)} usable demo cards, {args.kiosks} kiosks "
            f"in {time.perf_counter() - t0:.1f} s; cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f}"
        )
        render, floor = measure_floor(data_dir, contents, args.floor_seconds or args.seconds)
        run = run_service(data_dir, args, offset, cards, credentials)
        invalid = _verify_samples(data_dir, run.load.samples)
    return 0 if report(args, offset, render, floor, run, invalid) else 1


if __name__ == "__main__":
    sys.exit(main())
