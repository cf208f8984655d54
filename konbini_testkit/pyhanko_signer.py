"""PAdES signatures made by pyHanko's general-purpose writer, for any PDF: the tests sign a
document the service did not render (a forgery) and cross-check the service's own signer
(certserver.documents.pades.PadesSigner) against it, and the documents benchmark compares
the two. The service itself never signs this way."""

from __future__ import annotations

import io

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certserver.documents.pades import BYTES_RESERVED, FIELD_NAME
from certserver.documents.signing import MunicipalitySigner


def _asn1_certificate(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


class PyhankoPadesSigner:
    """The same signature made by pyHanko: works on any PDF, ~10 ms per signature."""

    def __init__(self, material: MunicipalitySigner, field_name: str = FIELD_NAME) -> None:
        from pyhanko.sign import fields, signers
        from pyhanko_certvalidator.registry import SimpleCertificateStore

        key_der = material.pades_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self._signer = signers.SimpleSigner(
            signing_cert=_asn1_certificate(material.pades_certificate),
            signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
            cert_registry=SimpleCertificateStore.from_certs([_asn1_certificate(c) for c in material.chain]),
        )
        self._metadata = signers.PdfSignatureMetadata(
            field_name=field_name,
            md_algorithm="sha256",
            subfilter=fields.SigSeedSubFilter.PADES,
            name=material.municipality_code,
        )

    def sign(self, pdf: bytes) -> bytes:
        """The signed PDF. Raises pyHanko's errors for a PDF it cannot parse."""
        from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
        from pyhanko.sign import signers

        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        output = io.BytesIO()
        signers.PdfSigner(self._metadata, signer=self._signer).sign_pdf(
            writer, output=output, bytes_reserved=2 * BYTES_RESERVED
        )
        return output.getvalue()
