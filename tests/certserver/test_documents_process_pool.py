"""Certificates rendered in worker processes are the same certificates: valid signed PDFs,
the same refusals with the same codes, a worker that dies costs at most the renders it was
doing, and a kiosk transaction through the real HTTP API renders in the render process.

Every test runs real worker processes (forkserver), the real DocumentService in them, and
the real verification on what comes back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import api_support
import documents_support
import httpx
import pytest
from api_support import (
    KioskClient,
    LiveServer,
    MovableClock,
    Pki,
    make_settings,
    populated_with_kiosks,
)
from documents_support import GAIJI

from certserver.app import DeploymentCheckError, check_settings, create_app
from certserver.cli import main
from certserver.config import Settings
from certserver.documents.content import CertificateContent, Issuer
from certserver.documents.errors import DocumentRefusedError, SignerNotFoundError
from certserver.documents.render_processes import (
    ProcessRenderer,
    RenderStartError,
    RenderWorkerLostError,
)
from certserver.documents.service import DocumentService, RenderedDocument
from certserver.documents.signing import QR_KEY, SignerStore
from certserver.documents.verification import TrustStore, verify_pdf
from certserver.services.kiosks import KioskCredential
from konbini_testkit import certificate_samples as samples

pki = api_support.pki  # fixture
ca_dir = documents_support.ca_dir  # fixture


@pytest.fixture(scope="module")
def trust(ca_dir: Path) -> TrustStore:
    return TrustStore.from_ca_dir(ca_dir)


@pytest.fixture(scope="module")
def renderer(ca_dir: Path) -> Iterator[ProcessRenderer]:
    renderer = ProcessRenderer(ca_dir, 2)
    renderer.start()
    yield renderer
    renderer.close()


@pytest.fixture
def lone_renderer(ca_dir: Path) -> Iterator[ProcessRenderer]:
    """One worker, for tests that kill it."""
    renderer = ProcessRenderer(ca_dir, 1)
    renderer.start()
    yield renderer
    renderer.close()


def gaiji_content() -> CertificateContent:
    content = samples.juminhyo()
    person = replace(samples.HOUSEHOLD[0], name=f"{GAIJI}田　太郎")
    return replace(content, body=replace(content.body, persons=(person,)))


def assert_valid(document: RenderedDocument, content: CertificateContent, trust: TrustStore) -> None:
    assert document.pdf.startswith(b"%PDF-")
    assert document.certificate_number == content.certificate_number
    assert document.sha256 == hashlib.sha256(document.pdf).hexdigest()
    result = verify_pdf(document.pdf, trust)
    assert result.valid, result.as_dict()


def gone(pid: int, within: float = 10.0) -> bool:
    """The process has ended (and been reaped) within `within` seconds."""
    deadline = time.monotonic() + within
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# -- the renderer ---------------------------------------------------------------------------


def test_every_certificate_content_crosses_the_process_boundary_unchanged() -> None:
    for content in [*samples.one_of_each().values(), replace(samples.inkan(), requester_serial="0A1B")]:
        copy = pickle.loads(pickle.dumps(content))
        assert copy == content
        assert copy.requester_serial == content.requester_serial
        assert copy.content_hash() == content.content_hash()


def test_the_workers_are_other_processes_each_ready_before_the_first_order(renderer: ProcessRenderer) -> None:
    pids = renderer.worker_pids()
    assert len(set(pids)) == 2
    assert os.getpid() not in pids
    assert all(Path(f"/proc/{pid}").exists() for pid in pids)


def test_every_kind_rendered_in_the_workers_is_a_valid_signed_pdf(renderer: ProcessRenderer, trust: TrustStore) -> None:
    contents = list(samples.one_of_each().values())
    with ThreadPoolExecutor(max_workers=2) as threads:  # as the app's render threads call it
        documents = list(threads.map(renderer.render, contents))
    for content, document in zip(contents, documents, strict=True):
        assert_valid(document, content, trust)


def test_a_gaiji_refusal_arrives_as_the_same_document_error(renderer: ProcessRenderer, ca_dir: Path) -> None:
    with pytest.raises(DocumentRefusedError) as in_process:
        DocumentService(SignerStore.open(ca_dir)).render(gaiji_content())
    with pytest.raises(DocumentRefusedError) as through_worker:
        renderer.render(gaiji_content())
    refused = through_worker.value
    assert type(refused) is DocumentRefusedError
    assert refused.code == "gaiji_in_record"
    assert (refused.message_ja, refused.message_en) == (in_process.value.message_ja, in_process.value.message_en)


def test_a_municipality_without_signing_keys_arrives_as_signer_not_found(renderer: ProcessRenderer) -> None:
    stranger = Issuer(code="01100", name="札幌市", prefecture="北海道", mayor_title="札幌市長", mayor_name="試験　市長")
    with pytest.raises(SignerNotFoundError) as refused:
        renderer.render(replace(samples.inkan(), issuer=stranger))
    assert refused.value.code == "signer_missing"


def test_a_worker_killed_while_rendering_fails_that_render_and_the_next_one_succeeds(
    lone_renderer: ProcessRenderer, trust: TrustStore
) -> None:
    (worker,) = lone_renderer.worker_pids()
    outcome: list[object] = []

    def render() -> None:
        try:
            outcome.append(lone_renderer.render(samples.inkan()))
        except Exception as exc:  # noqa: BLE001 - the test inspects whatever the render raised
            outcome.append(exc)

    os.kill(worker, signal.SIGSTOP)  # frozen: the render below waits on it
    try:
        caller = threading.Thread(target=render)
        caller.start()
        caller.join(timeout=1.0)
        assert caller.is_alive() and not outcome  # waiting for the stopped worker
    finally:
        os.kill(worker, signal.SIGKILL)
    caller.join(timeout=60)
    assert len(outcome) == 1 and isinstance(outcome[0], RenderWorkerLostError)
    assert gone(worker)

    content = samples.juminhyo()
    assert_valid(lone_renderer.render(content), content, trust)
    (replacement,) = lone_renderer.worker_pids()
    assert replacement != worker


def test_a_worker_stuck_past_the_render_timeout_is_ended_and_replaced(ca_dir: Path, trust: TrustStore) -> None:
    impatient = ProcessRenderer(ca_dir, 1, render_timeout=1.0)
    impatient.start()
    try:
        (worker,) = impatient.worker_pids()
        os.kill(worker, signal.SIGSTOP)  # stuck: it will never answer by itself
        started = time.monotonic()
        with pytest.raises(RenderWorkerLostError, match="in time"):
            impatient.render(samples.inkan())
        assert time.monotonic() - started < 30  # the time-out ended the wait, not the test's limit
        assert gone(worker)
        content = samples.juminhyo()
        assert_valid(impatient.render(content), content, trust)
        assert impatient.worker_pids() != (worker,)
    finally:
        impatient.close()


def test_a_worker_that_died_while_idle_costs_no_render(lone_renderer: ProcessRenderer, trust: TrustStore) -> None:
    (worker,) = lone_renderer.worker_pids()
    os.kill(worker, signal.SIGKILL)
    assert gone(worker)
    content = samples.tax()
    assert_valid(lone_renderer.render(content), content, trust)
    assert lone_renderer.worker_pids() != (worker,)


def test_closing_ends_the_workers_and_refuses_further_renders(ca_dir: Path) -> None:
    renderer = ProcessRenderer(ca_dir, 1)
    renderer.start()
    (worker,) = renderer.worker_pids()
    renderer.close()
    assert gone(worker)
    assert renderer.worker_pids() == ()
    with pytest.raises(Exception, match="closed"):
        renderer.render(samples.inkan())


def test_a_damaged_signing_key_is_refused_when_the_workers_start(tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca"
    samples.demo_signers(ca_dir)
    (ca_dir / "documents" / samples.ISSUER.code / QR_KEY).write_text("not a key\n")
    renderer = ProcessRenderer(ca_dir, 1)
    with pytest.raises(RenderStartError, match="ValueError"):
        renderer.start()
    assert renderer.worker_pids() == ()
    renderer.close()


SERVER = """
import sys, time
from certserver.documents.render_processes import ProcessRenderer
renderer = ProcessRenderer(sys.argv[1], 2)
renderer.start()
print(*renderer.worker_pids(), flush=True)
time.sleep(120)
"""


@pytest.mark.slow
def test_the_workers_end_when_the_server_process_is_killed(ca_dir: Path) -> None:
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(ca_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        workers = [int(pid) for pid in server.stdout.readline().split()]
        assert len(workers) == 2 and all(Path(f"/proc/{pid}").exists() for pid in workers)
    finally:
        server.kill()  # no shutdown of its own: as after an out-of-memory kill
        server.wait(timeout=30)
    assert all(gone(pid) for pid in workers)


# -- settings and the command ---------------------------------------------------------------


def test_the_settings_check_refuses_a_negative_number_of_render_processes() -> None:
    with pytest.raises(DeploymentCheckError, match="render_processes must be 0"):
        check_settings(Settings(render_processes=-1))
    check_settings(Settings(render_processes=0))  # threads of the server process: fine


def test_serve_refuses_negative_render_processes_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--data-dir", str(tmp_path), "--render-processes", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "render_processes must be 0" in err[0], err


def test_an_app_built_from_bare_settings_renders_in_its_own_process(pki: Pki, tmp_path: Path) -> None:
    from certserver.db.session import upgrade_to_head

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade_to_head(url)
    app = create_app(make_settings(pki, url))
    try:
        assert app.state.render_processes is None
        assert isinstance(app.state.service.transactions.municipalities.service.renderer, DocumentService)
    finally:
        app.state.engine.dispose()


# -- the service ----------------------------------------------------------------------------


@dataclasses.dataclass
class RunningService:
    url: str
    app: object
    credential: KioskCredential


@pytest.fixture
def service_with_a_render_process(db_url: str, pki: Pki) -> Iterator[RunningService]:
    clock = MovableClock()
    (credential,) = populated_with_kiosks(db_url, pki, ["K1"], clock())
    app = create_app(make_settings(pki, db_url, render_processes=1), clock=clock)
    with LiveServer(app) as server:
        yield RunningService(server.url, app, credential)


@pytest.mark.slow
def test_a_kiosk_transaction_renders_in_the_render_process_and_its_pdf_verifies(
    service_with_a_render_process: RunningService, pki: Pki
) -> None:
    service = service_with_a_render_process
    processes: ProcessRenderer = service.app.state.render_processes  # type: ignore[attr-defined]
    (worker,) = processes.worker_pids()
    answers: list[httpx.Response] = []
    with KioskClient(service.url, service.credential) as kiosk:
        tx_id, _ = kiosk.authenticated(pki.cards["toride-000"])
        # With the render process frozen, the order waits for it: the PDF is made there.
        os.kill(worker, signal.SIGSTOP)
        try:
            ordering = threading.Thread(target=lambda: answers.append(kiosk.order(tx_id)))
            ordering.start()
            ordering.join(timeout=1.5)
            assert ordering.is_alive() and not answers
            with KioskClient(service.url, None) as anyone:  # the server itself keeps answering
                assert anyone.http.get("/api/v1/health").status_code == 200
        finally:
            os.kill(worker, signal.SIGCONT)
        ordering.join(timeout=60)
        assert len(answers) == 1 and answers[0].status_code == 200, answers
        assert kiosk.pay(tx_id, answers[0].json()["fee_total_yen"]).status_code == 200
        documents = kiosk.documents(tx_id).json()["documents"]
        assert len(documents) == 1
        pdf = kiosk.document(tx_id, documents[0]["document_id"]).content
        assert kiosk.printed(tx_id).status_code == 200
    result = verify_pdf(pdf, TrustStore.from_ca_dir(pki.data_dir / "ca"))
    assert result.valid, result.as_dict()
    assert "".join(api_support.BY_ID["toride-000"].name.split()) in api_support.pdf_text(pdf)


@pytest.mark.slow
def test_the_render_processes_end_with_the_app(db_url: str, pki: Pki) -> None:
    app = create_app(make_settings(pki, db_url, render_processes=2), clock=MovableClock())
    workers = app.state.render_processes.worker_pids()
    assert len(workers) == 2
    with LiveServer(app):
        assert all(Path(f"/proc/{pid}").exists() for pid in workers)
    assert all(gone(pid) for pid in workers)
