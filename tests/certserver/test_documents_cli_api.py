"""`certserver verify` and the /verify endpoints report a certificate's status."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from asgi_client import AsgiClient
from fastapi import FastAPI
from pypdf import PdfReader

from certserver.api.verify_routes import configure, get_status_lookup, get_trust_store, router
from certserver.cli import main
from certserver.documents import samples
from certserver.documents.service import DocumentService
from certserver.documents.signing import SignerStore
from certserver.documents.verification import TrustStore


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


def test_cli_exits_zero_for_a_valid_pdf(
    data_dir: Path, signed_pdf: bytes, tmp_path: Path, capsys
) -> None:
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


def test_api_verifies_an_uploaded_pdf(
    client: AsgiClient, signed_pdf: bytes, foreign_pdf: bytes
) -> None:
    answer = client.post(
        "/verify/pdf", content=signed_pdf, headers={"content-type": "application/pdf"}
    )
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
    assert (
        AsgiClient(app).post("/verify/pdf", content=signed_pdf).json()["status"] == "unknown_issuer"
    )


def test_api_without_a_trust_store_is_unavailable(signed_pdf: bytes) -> None:
    app = FastAPI()
    app.include_router(router)
    assert AsgiClient(app).post("/verify/pdf", content=signed_pdf).status_code == 503
