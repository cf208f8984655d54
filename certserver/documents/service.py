"""The document service: from a CertificateContent to a signed PDF with a signed QR code.

The transaction service calls `render` when an order is placed, before anything is charged:
a content the fonts cannot print (外字) is refused there. `render` is thread-safe: fonts,
the background and each municipality's parsed keys are loaded once and shared read-only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from certserver.documents.content import CertificateContent
from certserver.documents.errors import DocumentError, DocumentRefusedError
from certserver.documents.fonts import LABEL, MINCHO, missing_characters, register_fonts
from certserver.documents.layouts import layout_for
from certserver.documents.pades import PadesSigner
from certserver.documents.qr import QrPayloadError, sign_payload
from certserver.documents.render import render_pdf
from certserver.documents.signing import SignerStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderedDocument:
    certificate_number: str
    pdf: bytes
    sha256: str  # hex digest of `pdf`, for the audit log
    pages: int


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            if item.name != "requester_serial":  # never printed
                yield from _strings(getattr(value, item.name))
    elif isinstance(value, tuple):
        for item in value:
            yield from _strings(item)


def check_printable(content: CertificateContent) -> None:
    """Refuse content with a character the fonts lack (外字), before any rendering.

    Raises DocumentRefusedError(code="gaiji_in_record").
    """
    texts = list(_strings(content))
    missing = set().union(*(missing_characters(texts, font) for font in {MINCHO, LABEL}))
    if missing:
        # Neither the log nor the message names the characters: they are part of a resident's record.
        logger.warning(
            "certificate %s refused: %d character(s) outside the font",
            content.certificate_number,
            len(missing),
        )
        raise DocumentRefusedError.of("gaiji_in_record")


def keywords_for(content: CertificateContent, qr_text: str, content_hash: bytes | None = None) -> str:
    """The signed metadata verification reads back: content hash and QR payload."""
    digest = content_hash if content_hash is not None else content.content_hash()
    return f"content-sha256:{digest.hex()} qr:{qr_text}"


class DocumentService:
    """Renders and signs certificates. Thread-safe; caches fonts and signers."""

    def __init__(self, signers: SignerStore) -> None:
        self._signers = signers
        self._pades: dict[str, PadesSigner] = {}
        self._lock = threading.Lock()
        register_fonts()

    def _pades_signer(self, municipality_code: str) -> PadesSigner:
        signer = self._pades.get(municipality_code)
        if signer is None:
            with self._lock:
                signer = self._pades.get(municipality_code)
                if signer is None:
                    signer = PadesSigner(self._signers.signer(municipality_code))
                    self._pades[municipality_code] = signer
        return signer

    def render(self, content: CertificateContent) -> RenderedDocument:
        """The signed PDF of `content`.

        Raises DocumentRefusedError (gaiji_in_record) for unprintable characters,
        SignerNotFoundError when the municipality has no signing keys, DocumentError
        (certificate_number_invalid) for a number the QR code cannot carry.
        """
        check_printable(content)
        layout = layout_for(content)
        material = self._signers.signer(content.issuer.code)
        pades = self._pades_signer(content.issuer.code)
        content_hash = content.content_hash()
        try:
            payload = sign_payload(
                material.qr_key,
                content.issuer.code,
                content.certificate_number,
                content.issued_on,
                content_hash,
            )
        except QrPayloadError as exc:
            raise DocumentError(
                "certificate_number_invalid",
                "証明書番号が不正です。",
                f"certificate number cannot be encoded: {exc}",
            ) from exc
        qr_text = payload.text()
        rendered = render_pdf(content, layout, qr_text, keywords_for(content, qr_text, content_hash))
        signed = pades.sign(rendered.pdf, content.signed_at)
        logger.info("certificate %s rendered (%d pages)", content.certificate_number, rendered.pages)
        return RenderedDocument(
            certificate_number=content.certificate_number,
            pdf=signed,
            sha256=hashlib.sha256(signed).hexdigest(),
            pages=rendered.pages,
        )
