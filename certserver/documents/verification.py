"""Verifying a certificate: the signed PDF file, or the QR code read from a paper copy.

A PDF is VALID only when all of these hold:
- exactly one PAdES signature, cryptographically intact, covering the *entire* file (our
  documents are never updated after signing, so any incremental update, even one a
  permissive diff policy would accept, is a modification);
- the signer chains to the document CA (the trust store's anchors);
- the QR code drawn on the page decodes to the payload recorded in the signed metadata,
  that payload's Ed25519 signature verifies with the municipality's QR key, and its
  municipality, certificate number and content hash match the signed document;
- the issuing records (`lookup`, when given) say the certificate was issued and not withdrawn.

Only what a damaged or forged document makes the libraries raise (pyHanko's PdfError, the
ValueErrors of pyHanko and asn1crypto for a damaged signature, QrPayloadError) is a verdict on
the document. Any other error (a bug of ours or of a library, the issuing records out of
reach) gives INDETERMINATE and is logged with its traceback: a genuine certificate must never
be called "modified" because this program failed.

A QR code alone proves what the municipality signed (number, date, content hash); the
person holding the paper compares the number the verifier shows with the printed one.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from certserver.documents.content import CertificateContent
from certserver.documents.qr import HASH_BYTES, QrPayload, QrPayloadError, parse_payload, qr_matrix
from certserver.documents.render import QR_FORM
from certserver.documents.signing import QR_PUBLIC

if TYPE_CHECKING:  # pyHanko is imported where used at run time
    from pyhanko.sign.validation import EmbeddedPdfSignature, PdfSignatureStatus
    from pyhanko_certvalidator import ValidationContext

logger = logging.getLogger(__name__)

DOCUMENT_CA_FILE = "document-ca.cert.pem"  # written by certserver.pki.ca at `certserver init`
_OU_CODE = re.compile(r"municipality ([0-9]{5,6})")
_RECT = re.compile(rb"(-?[\d.]+) (-?[\d.]+) (-?[\d.]+) (-?[\d.]+) re")

Lookup = Callable[[str], str | None]  # certificate number -> "issued" | "withdrawn" | None


class VerificationStatus(StrEnum):
    VALID = "valid"
    MODIFIED = "modified"  # changed after signing, or its parts do not match each other
    UNKNOWN_ISSUER = "unknown_issuer"  # signed by someone the trust store does not know
    REVOKED_OR_WITHDRAWN = "revoked_or_withdrawn"  # issued, then withdrawn (e.g. refunded)
    MALFORMED = "malformed"  # not a signed certificate at all
    INDETERMINATE = "indeterminate"  # not judged: verification itself failed (see the log)


@dataclass(frozen=True)
class VerificationResult:
    status: VerificationStatus
    reason_ja: str
    reason_en: str
    certificate_number: str | None = None
    municipality_code: str | None = None

    @property
    def valid(self) -> bool:
        return self.status is VerificationStatus.VALID

    def as_dict(self) -> dict[str, str | None]:
        data = asdict(self)
        data["status"] = self.status.value
        return data


@dataclass(frozen=True)
class TrustStore:
    """What a verifier trusts: document CA certificates and each municipality's QR key."""

    anchors: tuple[x509.Certificate, ...]
    qr_keys: Mapping[str, ed25519.Ed25519PublicKey] = field(default_factory=dict)

    @classmethod
    def from_ca_dir(cls, ca_dir: Path) -> TrustStore:
        """The document CA of `<ca_dir>` and the QR keys under `<ca_dir>/documents/<code>/`.
        Missing files give an empty store (everything verifies as UNKNOWN_ISSUER).

        Raises ValueError for a damaged certificate or key file.
        """
        ca_dir = Path(ca_dir)
        anchor_file = ca_dir / DOCUMENT_CA_FILE
        anchors = tuple(x509.load_pem_x509_certificates(anchor_file.read_bytes())) if anchor_file.is_file() else ()
        keys: dict[str, ed25519.Ed25519PublicKey] = {}
        documents = ca_dir / "documents"
        if documents.is_dir():
            for key_file in sorted(documents.glob(f"*/{QR_PUBLIC}")):
                key = serialization.load_pem_public_key(key_file.read_bytes())
                if isinstance(key, ed25519.Ed25519PublicKey):
                    keys[key_file.parent.name] = key
        return cls(anchors, keys)

    @cached_property
    def asn1_anchors(self) -> list[asn1_x509.Certificate]:
        return [asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in self.anchors]


def _result(
    status: VerificationStatus, ja: str, en: str, number: str | None = None, code: str | None = None
) -> VerificationResult:
    return VerificationResult(status, ja, en, number, code)


def _malformed(ja: str, en: str) -> VerificationResult:
    return _result(VerificationStatus.MALFORMED, ja, en)


_INDETERMINATE = _result(
    VerificationStatus.INDETERMINATE,
    "システムのエラーにより判定できませんでした。改ざんの有無は不明です。時間をおいて再度お試しください。",
    "verification failed on an error of the verifier, not of the document; try again later",
)


def _judged(verify: Callable[[], VerificationResult], what: str) -> VerificationResult:
    """`verify()`, or INDETERMINATE (logged with its traceback) for any error it lets through:
    by then the document's own faults have been turned into results."""
    try:
        return verify()
    except Exception:
        logger.exception("%s verification failed on an error of its own; the document was not judged", what)
        return _INDETERMINATE


def _check_payload(payload: QrPayload, trust: TrustStore, lookup: Lookup | None) -> VerificationResult:
    number, code = payload.certificate_number, payload.municipality_code
    key = trust.qr_keys.get(code)
    if key is None:
        return _result(
            VerificationStatus.UNKNOWN_ISSUER,
            "発行元の市区町村を確認できません。",
            f"no verification key for municipality {code}",
            number,
            code,
        )
    if not payload.verify(key):
        return _result(
            VerificationStatus.MODIFIED,
            "QRコードの署名が一致しません。改ざんの可能性があります。",
            "the QR code's signature does not verify",
            number,
            code,
        )
    if lookup is not None:
        state = lookup(number)
        if state == "withdrawn":
            return _result(
                VerificationStatus.REVOKED_OR_WITHDRAWN,
                "この証明書は取り消されています。",
                "this certificate was withdrawn after issue",
                number,
                code,
            )
        if state != "issued":
            return _result(
                VerificationStatus.UNKNOWN_ISSUER,
                "この証明書番号は発行記録にありません。",
                "the certificate number is not in the issuing records",
                number,
                code,
            )
    return _result(
        VerificationStatus.VALID,
        "正しく発行された証明書です。",
        "the certificate is authentic",
        number,
        code,
    )


def verify_qr(
    text: str,
    trust: TrustStore,
    lookup: Lookup | None = None,
    expected: CertificateContent | None = None,
) -> VerificationResult:
    """Verify a decoded QR text. With `expected`, also require that the QR belongs to that
    content (number, municipality, date and content hash). Never raises: an error of the
    verifier or of `lookup` gives INDETERMINATE."""
    return _judged(lambda: _verify_qr(text, trust, lookup, expected), "QR")


def _verify_qr(
    text: str, trust: TrustStore, lookup: Lookup | None, expected: CertificateContent | None
) -> VerificationResult:
    try:
        payload = parse_payload(text)
    except QrPayloadError as exc:
        return _malformed("証明書のQRコードではありません。", f"not a certificate QR code ({exc})")
    if expected is not None and not _payload_matches(payload, expected):
        return _result(
            VerificationStatus.MODIFIED,
            "このQRコードは別の証明書のものです。",
            "the QR code belongs to another certificate",
            payload.certificate_number,
            payload.municipality_code,
        )
    return _check_payload(payload, trust, lookup)


def _payload_matches(payload: QrPayload, content: CertificateContent) -> bool:
    return (
        payload.certificate_number == content.certificate_number
        and payload.municipality_code == content.issuer.code
        and payload.issued_on == content.issued_on
        and payload.content_hash16 == content.content_hash()[:HASH_BYTES]
    )


def _signer_municipality(certificate: asn1_x509.Certificate) -> str | None:
    parsed = x509.load_der_x509_certificate(certificate.dump())
    for attribute in parsed.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME):
        match = _OU_CODE.fullmatch(str(attribute.value))
        if match:
            return match.group(1)
    return None


def _pages(node) -> list:
    node = node.get_object() if hasattr(node, "get_object") else node
    if node.get("/Type") == "/Pages":
        return [page for kid in node["/Kids"] for page in _pages(kid)]
    return [node]


def _drawn_qr(reader) -> tuple[tuple[bool, ...], ...] | None:
    """The QR modules drawn on the last page (our QR form XObject), or None."""
    page = _pages(reader.root["/Pages"])[-1]
    xobjects = page["/Resources"].get("/XObject", {})
    for name, ref in xobjects.items():
        if name.endswith(QR_FORM):
            stream = ref.get_object()
            x0, y0, x1, y1 = (int(float(v)) for v in stream["/BBox"])
            size = x1 - x0
            if size <= 0 or size > 200 or y1 - y0 != size:
                return None
            grid = [[False] * size for _ in range(size)]
            for match in _RECT.finditer(stream.data):
                x, y, width, height = (int(float(v)) for v in match.groups())
                row = size - y - 1
                if not (0 <= row < size and x >= 0 and x + width <= size and height == 1):
                    return None
                for column in range(x, x + width):
                    grid[row][column] = True
            return tuple(tuple(r) for r in grid)
    return None


def _metadata(reader) -> tuple[str, str, str]:
    info = reader.trailer["/Info"]
    number = str(info.get("/Subject", ""))
    keywords = str(info.get("/Keywords", ""))
    fields = dict(part.split(":", 1) for part in keywords.split() if ":" in part)
    return number, fields.get("content-sha256", ""), fields.get("qr", "")


def _validate_signature(signature: EmbeddedPdfSignature, context: ValidationContext) -> PdfSignatureStatus:
    """pyHanko's validation, callable from any thread.

    Its synchronous entry point runs an event loop of its own, which fails inside a thread
    that already runs one (an async route, a Textual app); the document then looked
    "modified". The async entry point runs on a loop of ours instead: here, or, when this
    thread has a loop running, in a short-lived worker thread.
    """
    from pyhanko.sign.validation import async_validate_pdf_signature

    def run() -> PdfSignatureStatus:
        return asyncio.run(async_validate_pdf_signature(signature, context))

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pdf-verify") as pool:
        return pool.submit(run).result()


def verify_pdf(pdf: bytes, trust: TrustStore, lookup: Lookup | None = None) -> VerificationResult:
    """Verify a certificate PDF (see the module docstring). Never raises: a damaged or forged
    file gives MALFORMED or MODIFIED; an error of the verifier or of `lookup` INDETERMINATE."""
    return _judged(lambda: _verify_pdf(pdf, trust, lookup), "PDF")


def _verify_pdf(pdf: bytes, trust: TrustStore, lookup: Lookup | None) -> VerificationResult:
    """Raises whatever a bug or `lookup` raises; a fault of the document is a result."""
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        signatures = reader.embedded_signatures
    # pyHanko's reader raises PdfReadError and its kin for a broken structure, and a bare
    # ValueError where it converts a damaged number (seen with flipped bytes).
    except (PdfError, ValueError) as exc:
        logger.info("unparseable PDF submitted for verification: %s", type(exc).__name__)
        return _malformed("PDFファイルとして読み取れません。", "the file is not a readable PDF")
    if not signatures:
        return _malformed("電子署名付きの証明書ではありません。", "the PDF carries no signature")
    if len(signatures) > 1:  # we sign once; a later signature came with a later change
        return _result(
            VerificationStatus.MODIFIED,
            "署名の後に別の署名が追加されています。",
            "another signature was added after the certificate was signed",
        )
    context = ValidationContext(trust_roots=trust.asn1_anchors, allow_fetching=False)
    try:
        status = _validate_signature(signatures[0], context)
    # A damaged signature: pyHanko's SignatureValidationError and CMS errors (ValueErrors),
    # asn1crypto's ValueError (or UnicodeDecodeError) for damaged DER, PdfError for a
    # damaged byte range. Anything else (a RuntimeError of an event loop, an AttributeError)
    # is the verifier's own failure.
    except (PdfError, ValueError) as exc:
        logger.info("signature validation failed: %s", type(exc).__name__)
        return _result(
            VerificationStatus.MODIFIED,
            "電子署名を検証できません。",
            "the signature cannot be validated",
        )
    if not (status.intact and status.valid):
        return _result(
            VerificationStatus.MODIFIED,
            "署名の後に内容が変更されています。",
            "the document was changed after it was signed",
        )
    if not status.trusted:
        return _result(
            VerificationStatus.UNKNOWN_ISSUER,
            "署名者が信頼できる発行元ではありません。",
            "the signer is not certified by the document CA",
        )
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE or not status.bottom_line:
        return _result(
            VerificationStatus.MODIFIED,
            "署名の後に内容が追加・変更されています。",
            "content was added or changed after signing",
        )
    code = _signer_municipality(status.signing_cert)
    number = None
    try:
        number, content_hash_hex, qr_text = _metadata(reader)
        payload = parse_payload(qr_text)
        drawn = _drawn_qr(reader)
        printed_matches = drawn is not None and drawn == qr_matrix(qr_text)
    # The signed file is as the signer made it; a missing or garbled QR is a document we did
    # not make. A KeyError or the like here is a bug of ours (INDETERMINATE), not a verdict.
    except (QrPayloadError, PdfError):
        return _result(
            VerificationStatus.MODIFIED,
            "QRコードを確認できません。",
            "the QR code is missing or unreadable",
            number or None,
            code,
        )
    consistent = (
        printed_matches
        and payload.municipality_code == code
        and payload.certificate_number == number
        and payload.content_hash16.hex() == content_hash_hex[: 2 * HASH_BYTES]
    )
    if not consistent:
        return _result(
            VerificationStatus.MODIFIED,
            "QRコードが文書の内容と一致しません。",
            "the QR code does not match the signed document",
            number or None,
            code,
        )
    return _check_payload(payload, trust, lookup)
