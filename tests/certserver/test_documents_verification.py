"""A certificate verifies as issued, and every kind of tampering is caught with its status."""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import documents_support
import pytest
from pypdf import PdfReader, PdfWriter
from pypdf.generic import DecodedStreamObject, NameObject
from sqlalchemy.exc import OperationalError

from certserver.documents import verification
from certserver.documents.layouts import layout_for
from certserver.documents.pades import PadesSigner, UnsupportedPdfError
from certserver.documents.qr import parse_payload, sign_payload
from certserver.documents.render import render_pdf
from certserver.documents.service import DocumentService, RenderedDocument, keywords_for
from certserver.documents.signing import SignerStore
from certserver.documents.verification import TrustStore, VerificationStatus, verify_pdf, verify_qr
from konbini_testkit import certificate_samples as samples
from konbini_testkit.pyhanko_signer import PyhankoPadesSigner

ca_dir = documents_support.ca_dir  # fixture

VALID = VerificationStatus.VALID
MODIFIED = VerificationStatus.MODIFIED


@pytest.fixture(scope="module")
def service(ca_dir: Path) -> DocumentService:
    return DocumentService(SignerStore.open(ca_dir))


@pytest.fixture(scope="module")
def trust(ca_dir: Path) -> TrustStore:
    return TrustStore.from_ca_dir(ca_dir)


@pytest.fixture(scope="module")
def document(service: DocumentService) -> RenderedDocument:
    return service.render(samples.inkan())


def qr_text_of(pdf: bytes) -> str:
    keywords = PdfReader(io.BytesIO(pdf)).metadata["/Keywords"]
    return next(part[3:] for part in keywords.split() if part.startswith("qr:"))


def incremental(pdf: bytes, change) -> bytes:
    writer = PdfWriter(io.BytesIO(pdf), incremental=True)
    change(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_an_issued_certificate_verifies(document: RenderedDocument, trust: TrustStore) -> None:
    result = verify_pdf(document.pdf, trust, lambda number: "issued")
    assert result.status is VALID, result
    assert result.certificate_number == "R8-000102"
    assert result.municipality_code == "08217"


def test_verification_works_inside_a_running_event_loop(document: RenderedDocument, trust: TrustStore) -> None:
    # An async route or the Textual kiosk calls it with a loop already running.
    import asyncio

    async def inside() -> VerificationStatus:
        return verify_pdf(document.pdf, trust, lambda number: "issued").status

    assert asyncio.run(inside()) is VerificationStatus.VALID


def test_a_withdrawn_certificate_is_reported(document: RenderedDocument, trust: TrustStore) -> None:
    assert verify_pdf(document.pdf, trust, lambda n: "withdrawn").status is VerificationStatus.REVOKED_OR_WITHDRAWN
    qr = qr_text_of(document.pdf)
    assert verify_qr(qr, trust, lambda n: "withdrawn").status is VerificationStatus.REVOKED_OR_WITHDRAWN


def test_a_number_missing_from_the_records_is_not_valid(document: RenderedDocument, trust: TrustStore) -> None:
    assert verify_pdf(document.pdf, trust, lambda n: None).status is VerificationStatus.UNKNOWN_ISSUER


def test_changing_one_byte_of_the_page_fails(document: RenderedDocument, trust: TrustStore) -> None:
    tampered = bytearray(document.pdf)
    stream = tampered.index(b"stream\n", len(tampered) // 4)
    tampered[stream + 40] ^= 0x01
    assert verify_pdf(bytes(tampered), trust).status is MODIFIED


def test_changing_one_byte_of_the_signature_fails(document: RenderedDocument, trust: TrustStore) -> None:
    tampered = bytearray(document.pdf)
    contents = tampered.index(b"/Contents <") + len(b"/Contents <") + 200
    tampered[contents] = ord("0") if tampered[contents] != ord("0") else ord("1")
    assert verify_pdf(bytes(tampered), trust).status is MODIFIED


def test_an_appended_page_fails(document: RenderedDocument, trust: TrustStore) -> None:
    forged = incremental(document.pdf, lambda w: w.add_blank_page())
    assert PdfReader(io.BytesIO(forged)).get_num_pages() == 2
    assert verify_pdf(forged, trust).status is MODIFIED


def test_a_replaced_page_fails(document: RenderedDocument, service: DocumentService, trust: TrustStore) -> None:
    other = PdfReader(io.BytesIO(service.render(samples.tax()).pdf))

    def replace_page(writer: PdfWriter) -> None:
        page = writer.pages[0]
        page[NameObject("/Contents")] = writer._add_object(other.pages[0]["/Contents"].get_object())

    forged = incremental(document.pdf, replace_page)
    assert verify_pdf(forged, trust).status is MODIFIED


def test_text_changed_after_signing_fails(document: RenderedDocument, trust: TrustStore) -> None:
    def add_text(writer: PdfWriter) -> None:
        page = writer.pages[0]
        original = page.get_contents().get_data()
        stream = DecodedStreamObject()
        stream.set_data(original + b"\nBT /F1+0 12 Tf 100 700 Td (X) Tj ET\n")
        page[NameObject("/Contents")] = writer._add_object(stream)

    forged = incremental(document.pdf, add_text)
    assert verify_pdf(forged, trust).status is MODIFIED


def test_a_second_signature_by_another_key_fails(document: RenderedDocument, tmp_path: Path, trust: TrustStore) -> None:
    intruder = samples.demo_signers(tmp_path / "intruder-ca")
    forged = PyhankoPadesSigner(intruder.signer("08217"), field_name="Intruder").sign(document.pdf)
    assert verify_pdf(forged, trust).status is MODIFIED


def test_a_certificate_signed_outside_the_document_ca_is_unknown(tmp_path: Path, trust: TrustStore) -> None:
    intruder = DocumentService(samples.demo_signers(tmp_path / "intruder-ca"))
    forged = intruder.render(samples.inkan())
    assert verify_pdf(forged.pdf, trust).status is VerificationStatus.UNKNOWN_ISSUER
    assert verify_qr(qr_text_of(forged.pdf), trust).status is MODIFIED  # not the municipality's QR key


def test_a_qr_from_another_document_does_not_verify_this_one(
    ca_dir: Path, service: DocumentService, trust: TrustStore
) -> None:
    mine, theirs = samples.inkan(), samples.inkan(number="R8-000999")
    signer = SignerStore.open(ca_dir).signer("08217")
    their_qr = qr_text_of(service.render(theirs).pdf)
    my_qr = sign_payload(signer.qr_key, "08217", mine.certificate_number, mine.issued_on, mine.content_hash()).text()
    # Properly signed metadata, but the QR drawn on the page is another document's.
    rendered = render_pdf(mine, layout_for(mine), their_qr, keywords_for(mine, my_qr))
    forged = PadesSigner(signer).sign(rendered.pdf)
    assert verify_pdf(forged, trust).status is MODIFIED
    assert verify_qr(their_qr, trust, expected=mine).status is MODIFIED
    assert verify_qr(my_qr, trust, expected=mine).status is VALID


def test_a_qr_for_changed_content_does_not_match(service: DocumentService, trust: TrustStore) -> None:
    content = samples.inkan()
    qr = qr_text_of(service.render(content).pdf)
    changed = replace(content, body=replace(content.body, address="茨城県取手市別の町1番"))
    assert verify_qr(qr, trust, expected=content).status is VALID
    assert verify_qr(qr, trust, expected=changed).status is MODIFIED


def test_an_edited_qr_text_fails(document: RenderedDocument, trust: TrustStore) -> None:
    qr = qr_text_of(document.pdf)
    assert verify_qr(qr, trust).status is VALID
    assert verify_qr(qr.replace("R8-000102", "R8-000103"), trust).status is MODIFIED
    assert verify_qr(qr.replace(":08217:", ":08218:"), trust).status is VerificationStatus.UNKNOWN_ISSUER
    assert verify_qr("https://example.invalid/", trust).status is VerificationStatus.MALFORMED


def test_the_direct_signer_and_pyhanko_make_equally_valid_signatures(ca_dir: Path, trust: TrustStore) -> None:
    content = samples.tax()
    signer = SignerStore.open(ca_dir).signer("08217")
    qr = sign_payload(
        signer.qr_key,
        "08217",
        content.certificate_number,
        content.issued_on,
        content.content_hash(),
    ).text()
    unsigned = render_pdf(content, layout_for(content), qr, keywords_for(content, qr)).pdf
    for pades in (PadesSigner(signer), PyhankoPadesSigner(signer)):
        assert verify_pdf(pades.sign(unsigned), trust).status is VALID


def test_the_direct_signer_refuses_a_pdf_it_did_not_render(document: RenderedDocument, ca_dir: Path) -> None:
    signer = PadesSigner(SignerStore.open(ca_dir).signer("08217"))
    with pytest.raises(UnsupportedPdfError):
        signer.sign(document.pdf)  # already signed: a second revision
    with pytest.raises(UnsupportedPdfError):
        signer.sign(b"%PDF-1.4\nnothing\n%%EOF\n")


def _database_locked(number: str) -> str | None:
    raise OperationalError("SELECT status FROM documents", {}, Exception("database is locked"))


@pytest.mark.parametrize(
    ("failing", "error"),
    [
        # pyHanko's synchronous entry point inside a running event loop, as it once failed
        ("_validate_signature", RuntimeError("this event loop is already running")),
        ("_drawn_qr", KeyError("/Resources")),  # a bug in reading our own page structure
        ("_metadata", AttributeError("'NoneType' object has no attribute 'split'")),
    ],
)
def test_an_error_of_the_verifier_is_indeterminate_never_modified(
    document: RenderedDocument,
    trust: TrustStore,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    failing: str,
    error: Exception,
) -> None:
    """A genuine certificate is not called "modified" because the verifier failed: the answer
    is INDETERMINATE and the error is logged with its traceback."""

    def fail(*args: object) -> None:
        raise error

    monkeypatch.setattr(verification, failing, fail)
    with caplog.at_level(logging.ERROR, logger=verification.__name__):
        result = verify_pdf(document.pdf, trust, lambda n: "issued")
    assert result.status is VerificationStatus.INDETERMINATE
    assert not result.valid
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.exc_info is not None and record.exc_info[1] is error


def test_issuing_records_out_of_reach_make_both_checks_indeterminate(
    document: RenderedDocument, trust: TrustStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A database error while looking up the number used to escape verify_pdf (a 500 from
    the API, a traceback from the CLI); it is no verdict on the document either."""
    with caplog.at_level(logging.ERROR, logger=verification.__name__):
        assert verify_pdf(document.pdf, trust, _database_locked).status is VerificationStatus.INDETERMINATE
        qr = qr_text_of(document.pdf)
        assert verify_qr(qr, trust, _database_locked).status is VerificationStatus.INDETERMINATE
    assert [type(r.exc_info[1]) for r in caplog.records if r.exc_info] == [OperationalError] * 2


def test_damaged_der_in_the_signature_is_still_modified(document: RenderedDocument, trust: TrustStore) -> None:
    """Undecodable text in the signer certificate carried in the signature makes asn1crypto
    raise (UnicodeDecodeError, a ValueError) during validation: the document's fault, so
    "modified", not "indeterminate"."""
    tampered = bytearray(document.pdf)
    start = tampered.index(b"/Contents <") + len(b"/Contents <")
    end = tampered.index(b">", start)
    signature = bytearray(bytes.fromhex(tampered[start:end].decode()))
    at = signature.index(b"municipality 08217")  # the signer's OU, a UTF8String
    signature[at : at + 2] = b"\xff\xfe"
    tampered[start:end] = signature.hex().encode()
    assert verify_pdf(bytes(tampered), trust).status is MODIFIED


@pytest.mark.parametrize("garbage", [b"", b"not a pdf", b"%PDF-1.4\n%%EOF\n"])
def test_garbage_is_malformed(garbage: bytes, trust: TrustStore) -> None:
    assert verify_pdf(garbage, trust).status is VerificationStatus.MALFORMED


def test_an_unsigned_pdf_is_malformed(trust: TrustStore) -> None:
    content = samples.inkan()
    unsigned = render_pdf(content, layout_for(content), "KK1:08217:X:20261126:AAAA").pdf
    assert verify_pdf(unsigned, trust).status is VerificationStatus.MALFORMED


def test_an_empty_trust_store_trusts_nothing(document: RenderedDocument, tmp_path: Path) -> None:
    empty = TrustStore.from_ca_dir(tmp_path)
    assert verify_pdf(document.pdf, empty).status is VerificationStatus.UNKNOWN_ISSUER
    assert verify_qr(qr_text_of(document.pdf), empty).status is VerificationStatus.UNKNOWN_ISSUER


@pytest.mark.skipif(
    not (shutil.which("pdftoppm") and shutil.which("zbarimg")),
    reason="needs poppler-utils and zbar-tools",
)
@pytest.mark.parametrize("stem", list(samples.one_of_each()))
def test_the_printed_qr_code_scans_and_verifies(
    service: DocumentService, trust: TrustStore, tmp_path: Path, stem: str
) -> None:
    """Every certificate type's QR code, on its last page scanned in grey at 150 dpi (a
    plain office scan), decodes and verifies against the content it certifies."""
    content = samples.one_of_each()[stem]
    document = service.render(content)
    pdf = tmp_path / f"{stem}.pdf"
    pdf.write_bytes(document.pdf)
    last = str(document.pages)
    subprocess.run(
        ["pdftoppm", "-r", "150", "-gray", "-f", last, "-l", last, "-singlefile", str(pdf), str(tmp_path / "page")],
        check=True,
        timeout=30,
    )
    scanned = subprocess.run(
        ["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(tmp_path / "page.pgm")],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    assert scanned == qr_text_of(document.pdf)
    assert parse_payload(scanned).certificate_number == content.certificate_number
    assert verify_qr(scanned, trust, expected=content).status is VALID
