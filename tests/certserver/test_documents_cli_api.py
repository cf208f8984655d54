"""`certserver verify` and the /verify endpoints report a certificate's status."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import api_support
import httpx
import pytest
from api_support import Service
from asgi_client import AsgiClient
from fastapi import FastAPI
from pypdf import PdfReader
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

import certserver.app
from certserver.api.verify_routes import configure, get_status_lookup, get_trust_store, router
from certserver.centre import transactions
from certserver.cli import build_parser, main
from certserver.cli.verify_cmd import EXIT_CODES
from certserver.db.models.transactions import IssuedDocument
from certserver.db.session import transaction
from certserver.documents import verification
from certserver.documents.service import DocumentService
from certserver.documents.signing import SignerStore
from certserver.documents.verification import TrustStore, VerificationStatus
from konbini_testkit import certificate_samples as samples

pki = api_support.pki  # fixtures
service = api_support.service


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("data")
    samples.demo_signers(data_dir / "ca")
    return data_dir


@pytest.fixture(scope="module")
def signed_pdf(data_dir: Path) -> bytes:
    return DocumentService(SignerStore.open(data_dir / "ca")).render(samples.tax()).pdf


@pytest.fixture(scope="module")
def foreign_pdf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    other = samples.demo_signers(tmp_path_factory.mktemp("other") / "ca")
    return DocumentService(other).render(samples.tax()).pdf


def qr_text_of(pdf: bytes) -> str:
    keywords = PdfReader(io.BytesIO(pdf)).metadata["/Keywords"]
    return next(part[3:] for part in keywords.split() if part.startswith("qr:"))


def run_verify(data_dir: Path, *args: str) -> int:
    return main(["verify", "--data-dir", str(data_dir), *args])


def test_cli_exits_zero_for_a_valid_pdf(data_dir: Path, signed_pdf: bytes, tmp_path: Path, capsys) -> None:
    path = tmp_path / "tax.pdf"
    path.write_bytes(signed_pdf)
    assert run_verify(data_dir, str(path)) == 0
    assert capsys.readouterr().out.startswith("VALID R8-000103:")


def test_cli_exit_codes_distinguish_failures(
    data_dir: Path, signed_pdf: bytes, foreign_pdf: bytes, tmp_path: Path, capsys
) -> None:
    modified = bytearray(signed_pdf)
    modified[modified.index(b"stream\n", len(modified) // 4) + 40] ^= 0x20  # inside a stream
    cases = {
        "modified.pdf": (bytes(modified), 3),
        "foreign.pdf": (foreign_pdf, 4),
        "junk.pdf": (b"junk", 6),
    }
    for name, (payload, code) in cases.items():
        (tmp_path / name).write_bytes(payload)
        assert run_verify(data_dir, str(tmp_path / name)) == code, name
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0].split()[0] for line in out] == [
        "MODIFIED",
        "UNKNOWN_ISSUER",
        "MALFORMED",
    ]


def test_cli_verifies_a_qr_text(data_dir: Path, signed_pdf: bytes, capsys) -> None:
    qr = qr_text_of(signed_pdf)
    assert run_verify(data_dir, "--qr", qr) == 0
    assert run_verify(data_dir, "--qr", qr.replace("R8-000103", "R8-000104")) == 3
    assert run_verify(data_dir, "--qr", "hello") == 6


def test_cli_usage_errors_are_one_line(data_dir: Path, tmp_path: Path, capsys) -> None:
    assert run_verify(data_dir, str(tmp_path / "missing.pdf")) == 2
    assert run_verify(tmp_path / "empty", "--qr", "x") == 2
    assert run_verify(data_dir) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(line.startswith("certserver: ") for line in err)


@pytest.fixture
def client(data_dir: Path) -> AsgiClient:
    app = FastAPI()
    app.include_router(router)
    trust = TrustStore.from_ca_dir(data_dir / "ca")
    app.dependency_overrides[get_trust_store] = lambda: trust
    app.dependency_overrides[get_status_lookup] = lambda: {"R8-000103": "withdrawn"}.get
    return AsgiClient(app)


def test_api_verifies_an_uploaded_pdf(client: AsgiClient, signed_pdf: bytes, foreign_pdf: bytes) -> None:
    answer = client.post("/verify/pdf", content=signed_pdf, headers={"content-type": "application/pdf"})
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "revoked_or_withdrawn",
        "reason_ja": "この証明書は取り消されています。",
        "reason_en": "this certificate was withdrawn after issue",
        "certificate_number": "R8-000103",
        "municipality_code": "08217",
    }
    assert client.post("/verify/pdf", content=foreign_pdf).json()["status"] == "unknown_issuer"
    assert client.post("/verify/pdf", content=b"nope").json()["status"] == "malformed"


def test_api_verifies_a_qr_text(client: AsgiClient, signed_pdf: bytes) -> None:
    qr = qr_text_of(signed_pdf)
    assert client.post("/verify/qr", json={"text": qr}).json()["status"] == "revoked_or_withdrawn"
    assert client.post("/verify/qr", json={"text": "x"}).json()["status"] == "malformed"
    assert client.post("/verify/qr", json={}).status_code == 422


def test_api_refuses_oversized_uploads(client: AsgiClient) -> None:
    assert client.post("/verify/pdf", content=b"0" * (5 * 1024 * 1024 + 1)).status_code == 413


def test_configure_wires_the_trust_store_and_lookup(data_dir: Path, signed_pdf: bytes) -> None:
    app = FastAPI()
    app.include_router(router)
    configure(app, TrustStore.from_ca_dir(data_dir / "ca"), {"R8-000103": "issued"}.get)
    answer = AsgiClient(app).post("/verify/pdf", content=signed_pdf).json()
    assert answer["status"] == "valid" and answer["certificate_number"] == "R8-000103"
    configure(app, TrustStore.from_ca_dir(data_dir / "ca"), lambda number: None)
    assert AsgiClient(app).post("/verify/pdf", content=signed_pdf).json()["status"] == "unknown_issuer"


def test_api_without_a_trust_store_is_unavailable(signed_pdf: bytes) -> None:
    app = FastAPI()
    app.include_router(router)
    assert AsgiClient(app).post("/verify/pdf", content=signed_pdf).status_code == 503


def _verifier_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make signature validation fail the way pyHanko's synchronous entry point once did
    inside a running event loop: an error of the verifier, not of the document."""

    def fail(*args: object) -> None:
        raise RuntimeError("this event loop is already running")

    monkeypatch.setattr(verification, "_validate_signature", fail)


def test_cli_exits_indeterminate_when_verification_itself_fails(
    data_dir: Path,
    signed_pdf: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "tax.pdf"
    path.write_bytes(signed_pdf)
    _verifier_fails(monkeypatch)
    assert run_verify(data_dir, str(path)) == 7
    assert capsys.readouterr().out.startswith("INDETERMINATE:")
    # One line for the person (a damaged file may trip a library bug); no traceback...
    logged = [r for r in caplog.records if "RuntimeError" in r.getMessage()]
    assert logged and not any(r.exc_info for r in caplog.records)
    assert "--debug" in logged[0].getMessage()
    # ...which --debug shows, for the bug report.
    caplog.clear()
    assert run_verify(data_dir, str(path), "--debug") == 7
    assert any(isinstance(r.exc_info[1], RuntimeError) for r in caplog.records if r.exc_info)


def test_api_answers_indeterminate_when_verification_itself_fails(
    client: AsgiClient, signed_pdf: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    _verifier_fails(monkeypatch)
    answer = client.post("/verify/pdf", content=signed_pdf)
    assert answer.status_code == 200
    assert answer.json()["status"] == "indeterminate"


def test_every_status_has_its_own_exit_code_listed_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert set(EXIT_CODES) == {status.value for status in VerificationStatus}
    codes = list(EXIT_CODES.values())
    assert len(set(codes)) == len(codes) and not {1, 2} & set(codes)  # 1: a crash, 2: usage
    with pytest.raises(SystemExit):
        build_parser().parse_args(["verify", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for code in [*codes, 2]:
        assert f" {code} " in help_text, code


def _printed_pdf(service: Service) -> tuple[bytes, str]:
    """A certificate a kiosk fetched and printed: its PDF and certificate number."""
    with service.kiosk("K1") as kiosk:
        tx_id, _ = kiosk.paid(service.pki.cards["toride-000"])
        doc = kiosk.documents(tx_id).json()["documents"][0]
        pdf = kiosk.document(tx_id, doc["document_id"]).content
        assert kiosk.printed(tx_id).status_code == 200
    return pdf, doc["certificate_number"]


def test_cli_with_a_database_never_initialised_says_so_in_one_line(
    data_dir: Path,
    signed_pdf: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A data folder whose database cannot tell withdrawn certificates is a wrong folder:
    it used to be ignored, and the certificate called valid."""
    monkeypatch.delenv("CERTSERVER_DATABASE_URL", raising=False)
    service_dir = tmp_path / "service"
    shutil.copytree(data_dir / "ca", service_dir / "ca")
    path = tmp_path / "tax.pdf"
    path.write_bytes(signed_pdf)
    (service_dir / "certserver.db").write_bytes(b"")  # an empty SQLite database: no tables
    assert run_verify(service_dir, str(path)) == 2
    (service_dir / "certserver.db").write_bytes(b"not a database at all" * 100)
    assert run_verify(service_dir, str(path)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert [line.split(":")[0] for line in captured.err.splitlines()] == ["certserver"] * 2


def test_cli_and_api_are_indeterminate_when_the_issuing_records_fail_during_the_lookup(
    service: Service,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The database opened, then failed (locked, connection lost): no verdict (exit 7, API
    "indeterminate"); the API used to answer 500, the CLI did not ask."""

    def locked(session: object, certificate_number: str) -> str | None:
        raise OperationalError("SELECT status FROM documents", {}, Exception("database is locked"))

    pdf, _ = _printed_pdf(service)
    path = tmp_path / "juminhyo.pdf"
    path.write_bytes(pdf)
    monkeypatch.setattr(transactions, "certificate_status", locked)
    monkeypatch.setattr(certserver.app, "certificate_status", locked)  # the service's lookup
    monkeypatch.setenv("CERTSERVER_DATABASE_URL", service.settings.resolved_database_url)
    assert run_verify(service.pki.data_dir, str(path)) == 7
    assert capsys.readouterr().out.startswith("INDETERMINATE")
    answer = httpx.post(f"{service.url}/verify/pdf", content=pdf, timeout=30)
    assert (answer.status_code, answer.json()["status"]) == (200, "indeterminate")
    # The service logs the traceback; the command line says it in one line (see --debug).
    failures = [r.exc_info[1] for r in caplog.records if r.exc_info]
    assert len(failures) == 1 and isinstance(failures[0], OperationalError)
    assert any("OperationalError (certserver verify --debug" in r.getMessage() for r in caplog.records)


def test_cli_without_a_database_says_withdrawal_was_not_checked(
    data_dir: Path,
    signed_pdf: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("CERTSERVER_DATABASE_URL", raising=False)
    path = tmp_path / "tax.pdf"
    path.write_bytes(signed_pdf)
    assert run_verify(data_dir, str(path)) == 0
    assert "withdrawn was not checked" in capsys.readouterr().err
    assert not (data_dir / "certserver.db").exists()  # looking for it created nothing


def test_cli_and_api_agree_that_a_withdrawn_certificate_is_withdrawn(
    service: Service,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With the service's data folder, `certserver verify` consults the issuing records as
    POST /verify/pdf and /verify/qr do: valid once printed, withdrawn (exit 5) once the
    records say so."""
    pdf, certificate_number = _printed_pdf(service)
    path = tmp_path / "juminhyo.pdf"
    path.write_bytes(pdf)
    qr = qr_text_of(pdf)
    monkeypatch.setenv("CERTSERVER_DATABASE_URL", service.settings.resolved_database_url)

    def both_say() -> tuple[str, str, int, int]:
        api_pdf = httpx.post(f"{service.url}/verify/pdf", content=pdf, timeout=30).json()["status"]
        api_qr = httpx.post(f"{service.url}/verify/qr", json={"text": qr}, timeout=30).json()["status"]
        return (
            api_pdf,
            api_qr,
            run_verify(service.pki.data_dir, str(path)),
            run_verify(service.pki.data_dir, "--qr", qr),
        )

    assert both_say() == ("valid", "valid", 0, 0)
    # Withdrawn after issue: what certificate_status reads, whichever step withdraws it.
    with transaction(service.factory) as session:
        session.execute(
            update(IssuedDocument)
            .where(IssuedDocument.certificate_number == certificate_number)
            .values(status="withdrawn")
        )
    assert both_say() == ("revoked_or_withdrawn", "revoked_or_withdrawn", 5, 5)
    assert capsys.readouterr().out.count("REVOKED_OR_WITHDRAWN") == 2
