"""Document-signing material per municipality, kept under `<ca_dir>/documents/<code>/`.

Each municipality (市区町村) signs its certificates with two keys:
- a PAdES key (ECDSA P-256) whose certificate the document CA issues: protects the PDF file;
- a QR key (Ed25519): signs the compact payload printed as a QR code, so a *paper* copy can
  be checked offline (a PDF signature does not survive printing).

Files: `pades-key.pem` and `qr-key.pem` (0600), `pades-cert.pem`, `chain.pem` (issuing CA
certificates, nearest first), `qr-public.pem`. All keys here are test keys. Files are
written to a temporary name and renamed, so a crash never leaves half a key behind.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from certserver.documents.errors import SignerNotFoundError
from certserver.pki import entropy
from konbini_common.durable import write_atomic

logger = logging.getLogger(__name__)

PADES_KEY = "pades-key.pem"
PADES_CERT = "pades-cert.pem"
CHAIN = "chain.pem"
QR_KEY = "qr-key.pem"
QR_PUBLIC = "qr-public.pem"
_CODE = re.compile(r"[0-9]{5,6}")

Certify = Callable[[ec.EllipticCurvePublicKey], x509.Certificate]


@dataclass(frozen=True)
class MunicipalitySigner:
    """Loaded signing material of one municipality (parsed once, then shared by threads)."""

    municipality_code: str
    pades_key: ec.EllipticCurvePrivateKey
    pades_certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    qr_key: ed25519.Ed25519PrivateKey


def _write_private(path: Path, data: bytes) -> None:
    write_atomic(path, data)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _pem_key(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem_certs(certs: Sequence[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


class SignerStore:
    """Creates and loads municipality signing material. Thread-safe; loaded signers are cached."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._cache: dict[str, MunicipalitySigner] = {}

    @classmethod
    def open(cls, ca_dir: Path) -> SignerStore:
        """The store under `<ca_dir>/documents` (created on first `ensure_signer`)."""
        return cls(Path(ca_dir) / "documents")

    def directory(self, municipality_code: str) -> Path:
        if not _CODE.fullmatch(municipality_code):
            raise ValueError(f"not a municipality code: {municipality_code!r}")
        return self.root / municipality_code

    def has_signer(self, municipality_code: str) -> bool:
        folder = self.directory(municipality_code)
        return all((folder / name).is_file() for name in (PADES_KEY, PADES_CERT, CHAIN, QR_KEY))

    def municipality_codes(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if _CODE.fullmatch(p.name) and self.has_signer(p.name))

    def ensure_signer(
        self,
        municipality_code: str,
        municipality_name: str,
        certify: Certify,
        chain: Sequence[x509.Certificate] = (),
    ) -> None:
        """Create the municipality's keys once; `certify(public_key)` returns the PAdES
        certificate issued by the document CA, `chain` the CA certificates above it (nearest
        first; recommended so verifiers need only the root). Existing material is kept.

        Raises ValueError for a malformed code or when `certify` returns a certificate for
        another key.
        """
        folder = self.directory(municipality_code)
        with self._lock:
            if self.has_signer(municipality_code):
                return
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, 0o700)
            pades_key = entropy.ec_p256_key()
            certificate = certify(pades_key.public_key())
            if certificate.public_key() != pades_key.public_key():
                raise ValueError("the document CA certified another key")
            qr_key = entropy.ed25519_key()
            _write_private(folder / PADES_KEY, _pem_key(pades_key))
            _write_private(folder / QR_KEY, _pem_key(qr_key))
            _write_public(
                folder / QR_PUBLIC,
                qr_key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                ),
            )
            _write_public(folder / CHAIN, _pem_certs(chain))
            # Written last: its presence (with the others) marks complete material.
            _write_public(folder / PADES_CERT, _pem_certs([certificate]))
            logger.info(
                "document signer created for municipality %s (%s)",
                municipality_code,
                municipality_name,
            )

    def signer(self, municipality_code: str) -> MunicipalitySigner:
        """The loaded signer (parsed once per process). Raises SignerNotFoundError."""
        cached = self._cache.get(municipality_code)
        if cached is not None:
            return cached
        with self._lock:
            cached = self._cache.get(municipality_code)
            if cached is not None:
                return cached
            if not self.has_signer(municipality_code):
                raise SignerNotFoundError.of("signer_missing", municipality_code=municipality_code)
            folder = self.directory(municipality_code)
            pades_key = serialization.load_pem_private_key((folder / PADES_KEY).read_bytes(), None)
            qr_key = serialization.load_pem_private_key((folder / QR_KEY).read_bytes(), None)
            if not isinstance(pades_key, ec.EllipticCurvePrivateKey) or not isinstance(
                qr_key, ed25519.Ed25519PrivateKey
            ):
                raise SignerNotFoundError.of("signer_invalid", municipality_code=municipality_code)
            certificate = x509.load_pem_x509_certificate((folder / PADES_CERT).read_bytes())
            chain_bytes = (folder / CHAIN).read_bytes()
            chain = tuple(x509.load_pem_x509_certificates(chain_bytes)) if chain_bytes.strip() else ()
            signer = MunicipalitySigner(municipality_code, pades_key, certificate, chain, qr_key)
            self._cache[municipality_code] = signer
            return signer
