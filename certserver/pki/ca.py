"""The service's test CAs: creation at `certserver init`, loading at start-up.

Three self-signed roots live in `<data_dir>/ca/` (folder 0700, key files 0600):
the user-authentication CA (利用者証明用), the signing CA (署名用) and the document CA that
certifies the municipalities' PDF-signing keys. Every name says TEST ONLY (jpki.md §11.4).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificateIssuerPublicKeyTypes,
)

from certserver.pki import entropy, profiles
from certserver.pki.profiles import Purpose
from konbini_common.durable import write_atomic

log = logging.getLogger(__name__)

# File stems under ca_dir: `<stem>.key.pem` (PKCS#8, unencrypted, 0600) and `<stem>.cert.pem`.
_STEMS = {"auth": "auth-ca", "sign": "sign-ca", "document": "document-ca"}


class CaError(Exception):
    """A CA folder that cannot be created or loaded; the message is one line for people."""


class CaMissingError(CaError):
    """No CA in the folder: `certserver init` was not run."""


class CaExistsError(CaError):
    """`create` refused to overwrite existing CA files."""


@dataclass(frozen=True)
class LoadedCa:
    """One CA: its private key and self-signed certificate."""

    key: CertificateIssuerPrivateKeyTypes
    cert: x509.Certificate

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def name(self) -> x509.Name:
        return self.cert.subject


@dataclass
class CaBundle:
    """The service's test CAs, loaded from `settings.ca_dir`.

    `trusted_external_auth_cas` are extra trust anchors held in memory (e.g. supplied by
    embedding code); the anchors an operator trusts with `certserver card enroll` live in the
    database (table `trusted_cas`) so that every worker sees them at once, and
    `validation.validate_card_certificate` consults both.
    """

    auth_ca: LoadedCa
    sign_ca: LoadedCa
    document_ca: LoadedCa
    trusted_external_auth_cas: list[x509.Certificate] = field(default_factory=list)
    ca_dir: Path | None = None

    def for_purpose(self, purpose: Purpose | str) -> LoadedCa:
        """The card CA of a purpose ("auth" / "sign"). Raises ValueError for anything else."""
        if purpose == Purpose.AUTH:
            return self.auth_ca
        if purpose == Purpose.SIGN:
            return self.sign_ca
        raise ValueError(f"no card CA for purpose {purpose!r}")

    @classmethod
    def create(cls, ca_dir: Path, *, now: dt.datetime | None = None) -> CaBundle:
        """Make the three CAs in `ca_dir`. Raises CaExistsError if any CA file exists there,
        CaError if the folder cannot be written."""
        ca_dir = Path(ca_dir)
        existing = [p.name for stem in _STEMS.values() for p in _paths(ca_dir, stem) if p.exists()]
        if existing:
            raise CaExistsError(
                f"test CA already exists in {ca_dir} ({', '.join(sorted(existing))}); refusing to overwrite it"
            )
        moment = now or dt.datetime.now(dt.UTC)
        created: list[Path] = []
        try:
            ca_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(ca_dir, 0o700)
            loaded = {purpose: _create_one(ca_dir, purpose, stem, moment, created) for purpose, stem in _STEMS.items()}
        except FileExistsError as exc:
            _remove(created)
            raise CaExistsError(f"test CA already exists in {ca_dir}; refusing to overwrite it") from exc
        except OSError as exc:
            # Half a CA would make both `create` (exists) and `load` (missing) refuse.
            _remove(created)
            raise CaError(f"cannot write the test CA in {ca_dir}: {exc.strerror}") from exc
        log.info("created test CAs in %s", ca_dir)
        return cls(loaded["auth"], loaded["sign"], loaded["document"], ca_dir=ca_dir)

    @classmethod
    def load(cls, ca_dir: Path) -> CaBundle:
        """Load the three CAs. Raises CaMissingError (init not run) or CaError (damaged)."""
        ca_dir = Path(ca_dir)
        if not all(p.exists() for stem in _STEMS.values() for p in _paths(ca_dir, stem)):
            raise CaMissingError(f"no test CA in {ca_dir}: run `certserver init` first")
        loaded = {purpose: _load_one(ca_dir, stem) for purpose, stem in _STEMS.items()}
        return cls(loaded["auth"], loaded["sign"], loaded["document"], ca_dir=ca_dir)

    def issue_document_signing_certificate(
        self,
        public_key: CertificateIssuerPublicKeyTypes,
        municipality_code: str,
        municipality_name: str,
        *,
        now: dt.datetime | None = None,
    ) -> x509.Certificate:
        """A document-signing certificate for a municipality's key, from the document CA."""
        return profiles.build_document_signing_certificate(
            public_key=public_key,
            issuer_key=self.document_ca.key,
            issuer_cert=self.document_ca.cert,
            municipality_code=municipality_code,
            municipality_name=municipality_name,
            now=now or dt.datetime.now(dt.UTC),
        )


def _create_one(ca_dir: Path, purpose: str, stem: str, moment: dt.datetime, created: list[Path]) -> LoadedCa:
    key = _new_ca_key(purpose)
    cert = profiles.build_ca_certificate(purpose, key, moment)
    key_path, cert_path = _paths(ca_dir, stem)
    _write_private(
        key_path,
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
    created.append(key_path)
    _write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    created.append(cert_path)
    return LoadedCa(key, cert)


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _paths(ca_dir: Path, stem: str) -> tuple[Path, Path]:
    return ca_dir / f"{stem}.key.pem", ca_dir / f"{stem}.cert.pem"


def _new_ca_key(purpose: str) -> CertificateIssuerPrivateKeyTypes:
    if purpose == "document":
        # P-256 keeps every PDF signature small and fast; the card CAs stay RSA like J-LIS.
        return entropy.ec_p256_key()
    return entropy.rsa_key(profiles.RSA_KEY_SIZE, profiles.RSA_PUBLIC_EXPONENT)


def _load_one(ca_dir: Path, stem: str) -> LoadedCa:
    key_path, cert_path = _paths(ca_dir, stem)
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except OSError as exc:
        raise CaError(f"cannot read the test CA file {exc.filename}: {exc.strerror}") from exc
    except ValueError as exc:
        raise CaError(f"test CA files {stem}.* in {ca_dir} are damaged") from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CaError(f"test CA key {key_path.name} has an unsupported type")
    if key.public_key() != cert.public_key():
        raise CaError(f"test CA key {key_path.name} does not match {cert_path.name}")
    return LoadedCa(key, cert)


def _write_private(path: Path, payload: bytes) -> None:
    """Create `path` (0600) atomically and durably. Raises FileExistsError (it never replaces
    an existing file: a concurrent `init` cannot overwrite a CA key) and OSError."""
    write_atomic(path, payload, replace=False)
