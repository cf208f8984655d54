"""PAdES B-B signatures (ECDSA P-256, SHA-256, ETSI.CAdES.detached).

`PadesSigner` writes the signature revision itself. Our renderer's output is a
single-revision PDF with a classic cross-reference table, so adding the signature is a fixed
incremental update: the signature dictionary, an invisible signature widget, the AcroForm,
the catalog and the first page with its /Annots. The CMS is built with asn1crypto from parts
prepared once per municipality. This costs about a millisecond; pyHanko's general-purpose
writer spends ~10 ms parsing and re-serialising the document (konbini_testkit.pyhanko_signer
makes the same signature that way, for the tests' cross-check and the benchmark's comparison).

Its signatures are verified by pyHanko's validator (verification.py), which is the reference.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from certserver.documents.signing import MunicipalitySigner

FIELD_NAME = "CertificateSignature"
BYTES_RESERVED = 4096  # CMS with a two-certificate chain is ~1.5 KB; hex doubles it
_BYTE_RANGE_WIDTH = 10  # digits per ByteRange number (files < 10 GB)


def _tlv(tag: int, content: bytes) -> bytes:
    """One DER element (definite length)."""
    length = len(content)
    if length < 0x80:
        return bytes((tag, length)) + content
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(encoded))) + encoded + content


_VERSION_1 = core.Integer(1).dump()
_SHA256_DER = algos.DigestAlgorithm({"algorithm": "sha256"}).dump()
_ECDSA_SHA256_DER = algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}).dump()
_DATA_OID_DER = cms.ContentType("data").dump()
_SIGNED_DATA_OID_DER = cms.ContentType("signed_data").dump()


class UnsupportedPdfError(ValueError):
    """The PDF is not a fresh single-revision file as our renderer writes it."""


def _asn1_cert(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


def _pdf_date(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("D:%Y%m%d%H%M%S+00'00'")


_TRAILER = re.compile(rb"trailer\s*<<(?P<body>.*?)>>\s*startxref\s*(?P<xref>\d+)\s*%%EOF\s*$", re.S)
_REF = rb"/%s\s+(\d+)\s+0\s+R"


def _xref_offsets(pdf: bytes, xref_offset: int) -> list[int]:
    """Object offsets from a classic cross-reference table with one subsection starting at 0."""
    header = re.compile(rb"xref\s+0\s+(\d+)\s+").match(pdf, xref_offset)
    if header is None:
        raise UnsupportedPdfError("no classic cross-reference table")
    count, start = int(header.group(1)), header.end()
    table = pdf[start : start + 20 * count]
    return [int(table[i * 20 : i * 20 + 10]) for i in range(count)]


def _object(pdf: bytes, offsets: list[int], number: int) -> bytes:
    """The dictionary text of object `number` (a dictionary object without a stream)."""
    if not 0 < number < len(offsets):
        raise UnsupportedPdfError(f"object {number} not in the cross-reference table")
    start = offsets[number]
    end = pdf.find(b"endobj", start)
    match = re.match(rb"%d 0 obj\s*(<<.*>>)\s*$" % number, pdf[start:end], re.S)
    if match is None or b"stream" in match.group(1):
        raise UnsupportedPdfError(f"object {number} is not a plain dictionary")
    return match.group(1)


class PadesSigner:
    """Signs PDFs our renderer produced, for one municipality. Immutable; thread-safe."""

    def __init__(self, material: MunicipalitySigner, field_name: str = FIELD_NAME) -> None:
        if not isinstance(material.pades_key, ec.EllipticCurvePrivateKey):
            raise TypeError("PAdES key must be ECDSA")
        self._key = material.pades_key
        self._field_name = field_name
        signer_cert = _asn1_cert(material.pades_certificate)
        self._sid = cms.SignerIdentifier(
            {
                "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                    {"issuer": signer_cert.issuer, "serial_number": signer_cert.serial_number}
                )
            }
        )
        # ESS signing-certificate-v2: binds the signer's certificate (required by PAdES).
        self._signing_certificate = cms.CMSAttribute(
            {
                "type": "signing_certificate_v2",
                "values": [
                    tsp.SigningCertificateV2(
                        {
                            "certs": [
                                tsp.ESSCertIDv2(
                                    {
                                        "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                                        "cert_hash": hashlib.sha256(signer_cert.dump()).digest(),
                                        "issuer_serial": {
                                            "issuer": [asn1_x509.GeneralName({"directory_name": signer_cert.issuer})],
                                            "serial_number": signer_cert.serial_number,
                                        },
                                    }
                                )
                            ]
                        }
                    )
                ],
            }
        )
        self._name = material.municipality_code
        self._sid_der = self._sid.dump()
        self._signing_certificate_der = self._signing_certificate.dump()
        self._content_type_der = cms.CMSAttribute({"type": "content_type", "values": ["data"]}).dump()
        template = cms.CMSAttribute({"type": "message_digest", "values": [bytes(32)]}).dump()
        self._digest_prefix = template[:-32]
        self._certificates_der = b"".join(
            c.public_bytes(serialization.Encoding.DER) for c in (material.pades_certificate, *material.chain)
        )

    def _cms(self, digest: bytes) -> bytes:
        """DER ContentInfo(SignedData) over `digest`, assembled from the parts prepared in
        __init__ (asn1crypto would re-serialise the certificates on every call)."""
        attributes = sorted([self._content_type_der, self._digest_prefix + digest, self._signing_certificate_der])
        attributes_content = b"".join(attributes)  # DER: SET OF sorted by encoding
        signature = self._key.sign(_tlv(0x31, attributes_content), ec.ECDSA(hashes.SHA256()))
        signer_info = _tlv(
            0x30,
            _VERSION_1
            + self._sid_der
            + _SHA256_DER
            + _tlv(0xA0, attributes_content)  # [0] IMPLICIT signedAttrs
            + _ECDSA_SHA256_DER
            + _tlv(0x04, signature),
        )
        signed_data = _tlv(
            0x30,
            _VERSION_1
            + _tlv(0x31, _SHA256_DER)
            + _tlv(0x30, _DATA_OID_DER)  # detached: no eContent
            + _tlv(0xA0, self._certificates_der)  # [0] IMPLICIT certificates
            + _tlv(0x31, signer_info),
        )
        return _tlv(0x30, _SIGNED_DATA_OID_DER + _tlv(0xA0, signed_data))

    def sign(self, pdf: bytes, now: dt.datetime | None = None) -> bytes:
        """The PDF with a PAdES B-B signature appended as an incremental update.

        Raises UnsupportedPdfError for anything but a single-revision PDF with a classic
        cross-reference table and no form (what render.py writes).
        """
        trailer = _TRAILER.search(pdf, max(0, len(pdf) - 2048))
        if trailer is None or pdf.count(b"startxref") != 1 or b"/AcroForm" in pdf:
            raise UnsupportedPdfError("not a fresh single-revision PDF")
        body = trailer.group("body")
        size_match = re.search(rb"/Size\s+(\d+)", body)
        root_match = re.search(_REF % b"Root", body)
        info_match = re.search(_REF % b"Info", body)
        id_match = re.search(rb"/ID\s*\[\s*<([0-9a-fA-F]+)>", body)
        if not (size_match and root_match and info_match and id_match):
            raise UnsupportedPdfError("trailer lacks /Size, /Root, /Info or /ID")
        size, root, info = (
            int(size_match.group(1)),
            int(root_match.group(1)),
            int(info_match.group(1)),
        )
        offsets_in = _xref_offsets(pdf, int(trailer.group("xref")))
        catalog = _object(pdf, offsets_in, root)
        pages_match = re.search(_REF % b"Pages", catalog)
        if pages_match is None:
            raise UnsupportedPdfError("catalog without /Pages")
        pages = _object(pdf, offsets_in, int(pages_match.group(1)))
        kid = re.search(rb"/Kids\s*\[\s*(\d+)\s+0\s+R", pages)
        if kid is None:
            raise UnsupportedPdfError("page tree without kids")
        page_number = int(kid.group(1))
        page = _object(pdf, offsets_in, page_number)
        if b"/Annots" in page or re.search(rb"/Type\s*/Page\b(?!s)", page) is None:
            raise UnsupportedPdfError("first page is not a plain leaf page")

        sig_obj, widget_obj, form_obj = size, size + 1, size + 2
        placeholder = b"[0 " + b" ".join([b" " * _BYTE_RANGE_WIDTH] * 3) + b"]"
        contents_hex_length = 2 * BYTES_RESERVED
        objects = {
            sig_obj: b"<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached /ByteRange "
            + placeholder
            + b" /Contents <"
            + b"0" * contents_hex_length
            + b"> /M ("
            + _pdf_date(now or dt.datetime.now(dt.UTC)).encode()
            + b") /Name ("
            + self._name.encode()
            + b") >>",
            widget_obj: b"<< /Type /Annot /Subtype /Widget /FT /Sig /T (%s) /V %d 0 R /F 132 /Rect [0 0 0 0] /P %d 0 R >>"
            % (self._field_name.encode(), sig_obj, page_number),
            form_obj: b"<< /Fields [%d 0 R] /SigFlags 3 >>" % widget_obj,
            root: b"<< /AcroForm %d 0 R " % form_obj + catalog[2:],
            page_number: b"<< /Annots [%d 0 R] " % widget_obj + page[2:],
        }
        out = bytearray(pdf)
        if not out.endswith(b"\n"):
            out += b"\n"
        offsets: dict[int, int] = {}
        for number in sorted(objects):
            offsets[number] = len(out)
            out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
        xref_offset = len(out)
        out += b"xref\n"
        for number in sorted(offsets):
            out += b"%d 1\n%010d 00000 n \n" % (number, offsets[number])
        new_id = hashlib.md5(bytes(out[-256:]) + str(len(out)).encode()).hexdigest().encode()
        out += (
            b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R /ID [<%s><%s>] /Prev %d >>\nstartxref\n%d\n%%%%EOF\n"
            % (
                size + 3,
                root,
                info,
                id_match.group(1),
                new_id,
                int(trailer.group("xref")),
                xref_offset,
            )
        )
        # ByteRange: everything except the hex string of /Contents (including its brackets' content).
        contents_start = out.index(b"/Contents <", offsets[sig_obj]) + len(b"/Contents ")
        contents_end = contents_start + contents_hex_length + 2
        byte_range = b"[0 %*d %*d %*d]" % (
            _BYTE_RANGE_WIDTH,
            contents_start,
            _BYTE_RANGE_WIDTH,
            contents_end,
            _BYTE_RANGE_WIDTH,
            len(out) - contents_end,
        )
        range_at = out.index(placeholder, offsets[sig_obj])
        out[range_at : range_at + len(placeholder)] = byte_range.ljust(len(placeholder))
        digest = hashlib.sha256()
        digest.update(memoryview(out)[:contents_start])
        digest.update(memoryview(out)[contents_end:])
        signature = self._cms(digest.digest()).hex().encode()
        if len(signature) > contents_hex_length:
            raise UnsupportedPdfError("signature larger than the reserved space")
        out[contents_start + 1 : contents_start + 1 + len(signature)] = signature
        return bytes(out)
