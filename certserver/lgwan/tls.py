"""The LGWAN link's test PKI and its mutual-TLS settings.

The J-LIS centre (証明書交付センター) and each municipality's certificate server (証明発行サーバ)
are separate HTTP services linked over LGWAN by mutual TLS. Two separate self-signed test
CAs make the roles a matter of plain TLS verification, so neither application has to
inspect a peer's certificate:

- the centre CA issues the centre's client certificate and nothing else: a municipality
  server trusts only it for client certificates, so it answers only the centre (another
  municipality's certificate is refused in the handshake);
- the municipality CA issues the municipalities' server certificates and nothing else: the
  centre's client trusts only it, so it talks only to municipality servers the PKI made.

Layout of the PKI folder (folders 0700, files 0600 from their creation)::

    centre-ca.pem  centre-ca.key  municipality-ca.pem  municipality-ca.key
    centre.pem  centre.key                      the centre's client certificate
    servers/<name>.pem  servers/<name>.key      one server certificate per municipality

Every certificate says TEST ONLY: none of this is LGWAN's real PKI.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certserver.data_folder import make_private_folder
from konbini_common.durable import write_atomic

log = logging.getLogger(__name__)

CENTRE_CA_STEM = "centre-ca"
MUNICIPALITY_CA_STEM = "municipality-ca"
CENTRE_STEM = "centre"
SERVERS_FOLDER = "servers"
CENTRE_COMMON_NAME = "J-LIS centre (test)"
DEFAULT_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost")

_TEST_ORG = "konbini-kiosk LGWAN TEST ONLY"
# A server's name becomes a file name: no separators, no leading dot.
_SERVER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"(?=.{{1,253}}\Z){_DNS_LABEL}(?:\.{_DNS_LABEL})*")
# Certificates start a little in the past, so that a peer whose clock is slightly behind
# does not refuse a certificate made a moment ago.
_BACKDATE = dt.timedelta(minutes=5)


class LgwanTlsError(Exception):
    """An LGWAN TLS file that is missing, unreadable or unusable; the message is one line
    that names the file."""


@dataclass(frozen=True)
class TlsFiles:
    """One party's files for the LGWAN link."""

    cert: Path  # PEM certificate
    key: Path  # PEM private key (0600)
    trust: Path  # PEM of the CA this party trusts for its peers


class UvicornSslOptions(TypedDict):
    """Keyword arguments of uvicorn.Config; a TypedDict (a plain dict at run time) so that
    `uvicorn.Config(app, **options)` type-checks."""

    ssl_certfile: str
    ssl_keyfile: str
    ssl_ca_certs: str
    ssl_cert_reqs: int


@dataclass(frozen=True)
class _Issuer:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


@dataclass(frozen=True)
class _Profile:
    """What a leaf certificate says: its holder, what it is for, the names it answers to."""

    common_name: str
    usage: x509.ObjectIdentifier
    hosts: tuple[x509.GeneralName, ...] = ()


def make_lgwan_pki(
    folder: Path,
    *,
    servers: Sequence[str],
    hosts: Sequence[str] = DEFAULT_HOSTS,
    valid_days: int = 3650,
) -> None:
    """Make the LGWAN test PKI in `folder`, or complete it.

    Idempotent: existing CAs and certificates are kept; missing ones are made (a server
    named for the first time gets its certificate). A certificate is remade, with its key
    kept, only when it no longer fits: expired, not issued by the current CA, or (for a
    server) naming other hosts than 127.0.0.1, localhost and `hosts`.
    Raises ValueError for a bad server name, host or `valid_days`; LgwanTlsError when a
    file cannot be written or an existing one is damaged.
    """
    names = [_checked_server_name(name) for name in servers]
    alt_names = _alt_names([*DEFAULT_HOSTS, *hosts])
    if valid_days < 1:
        raise ValueError(f"valid_days must be at least 1, not {valid_days}")
    now = dt.datetime.now(dt.UTC)
    lifetime = dt.timedelta(days=valid_days)
    try:
        make_private_folder(folder)
        make_private_folder(folder / SERVERS_FOLDER)
        centre_ca = _ensure_ca(folder / CENTRE_CA_STEM, "LGWAN centre CA (test)", now, lifetime)
        municipality_ca = _ensure_ca(folder / MUNICIPALITY_CA_STEM, "LGWAN municipality CA (test)", now, lifetime)
        _ensure_leaf(
            folder / CENTRE_STEM,
            centre_ca,
            _Profile(CENTRE_COMMON_NAME, ExtendedKeyUsageOID.CLIENT_AUTH),
            now,
            lifetime,
        )
        for name in names:
            profile = _Profile(server_common_name(name), ExtendedKeyUsageOID.SERVER_AUTH, alt_names)
            _ensure_leaf(folder / SERVERS_FOLDER / name, municipality_ca, profile, now, lifetime)
    except OSError as exc:
        raise LgwanTlsError(f"cannot write the LGWAN test PKI file {exc.filename or folder}: {exc.strerror}") from exc


def server_common_name(name: str) -> str:
    """The CN of municipality server `name`'s certificate."""
    return f"LGWAN municipality server {name} (test)"


def centre_client_files(folder: Path) -> TlsFiles:
    """The centre's client certificate and key, trusting the municipality CA.
    Raises LgwanTlsError naming the first file that is missing or unreadable."""
    return _checked(
        TlsFiles(
            cert=folder / f"{CENTRE_STEM}.pem",
            key=folder / f"{CENTRE_STEM}.key",
            trust=folder / f"{MUNICIPALITY_CA_STEM}.pem",
        )
    )


def server_files(folder: Path, name: str) -> TlsFiles:
    """Municipality server `name`'s certificate and key, trusting the centre CA.
    Raises ValueError for a bad name; LgwanTlsError naming the first file that is missing
    or unreadable."""
    servers = folder / SERVERS_FOLDER
    name = _checked_server_name(name)
    return _checked(
        TlsFiles(
            cert=servers / f"{name}.pem",
            key=servers / f"{name}.key",
            trust=folder / f"{CENTRE_CA_STEM}.pem",
        )
    )


def client_ssl_context(files: TlsFiles) -> ssl.SSLContext:
    """A client context (for httpx's `verify=`): presents `files.cert`, accepts only servers
    whose certificate comes from `files.trust` and names the host dialled, TLS 1.2 or newer.
    Raises LgwanTlsError naming the file that is missing, unreadable or unusable."""
    # PROTOCOL_TLS_CLIENT verifies the peer and its host name by default. Unlike
    # ssl.create_default_context it never adds the system's CAs: only `files.trust` counts.
    return _configured(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), files)


def server_ssl_context(files: TlsFiles) -> ssl.SSLContext:
    """A server context: presents `files.cert` and requires a client certificate from
    `files.trust`, TLS 1.2 or newer. Raises LgwanTlsError naming the file that is missing,
    unreadable or unusable."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.verify_mode = ssl.CERT_REQUIRED
    return _configured(context, files)


def uvicorn_ssl_options(files: TlsFiles) -> UvicornSslOptions:
    """Keyword arguments of uvicorn.Config for a server that requires a client certificate
    from `files.trust` (uvicorn's context keeps Python's minimum of TLS 1.2).
    Raises LgwanTlsError naming the first file that is missing or unreadable."""
    _checked(files)
    return {
        "ssl_certfile": str(files.cert),
        "ssl_keyfile": str(files.key),
        "ssl_ca_certs": str(files.trust),
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
    }


# -- files ------------------------------------------------------------------------------------


def _checked(files: TlsFiles) -> TlsFiles:
    for path in (files.cert, files.key, files.trust):
        try:
            with path.open("rb"):
                pass
        except FileNotFoundError as exc:
            raise LgwanTlsError(f"the LGWAN TLS file {path} is missing: make the LGWAN test PKI first") from exc
        except OSError as exc:
            raise LgwanTlsError(f"cannot read the LGWAN TLS file {path}: {exc.strerror}") from exc
    return files


def _configured(context: ssl.SSLContext, files: TlsFiles) -> ssl.SSLContext:
    _checked(files)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # Strict RFC 5280 checks, as Python 3.13 makes the default: the test PKI must pass them.
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    try:
        context.load_verify_locations(cafile=files.trust)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise LgwanTlsError(f"the LGWAN trust file {files.trust} holds no usable CA certificate") from exc
    try:
        context.load_cert_chain(certfile=files.cert, keyfile=files.key)
    except OSError as exc:
        raise LgwanTlsError(
            f"the LGWAN TLS certificate {files.cert} and key {files.key} are damaged or do not match"
        ) from exc
    return context


def _paths(stem: Path) -> tuple[Path, Path]:
    return stem.with_name(f"{stem.name}.key"), stem.with_name(f"{stem.name}.pem")


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey | None:
    """The key in `path`, or None if there is none. Raises LgwanTlsError if it is damaged."""
    if not path.exists():
        return None
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as exc:
        raise LgwanTlsError(f"the LGWAN key file {path} is damaged; remove it to make a new key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise LgwanTlsError(f"the LGWAN key file {path} does not hold an EC key; remove it to make a new key")
    return key


def _load_cert(path: Path) -> x509.Certificate | None:
    """The certificate in `path`, or None if there is none. Raises LgwanTlsError if it is damaged."""
    if not path.exists():
        return None
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError as exc:
        raise LgwanTlsError(f"the LGWAN certificate file {path} is damaged; remove it to make a new one") from exc


def _key_or_new(path: Path) -> ec.EllipticCurvePrivateKey:
    key = _load_key(path)
    if key is None:
        key = ec.generate_private_key(ec.SECP256R1())  # P-256: small and fast handshakes
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # write_atomic creates the file 0600 before any key byte is in it, and never replaces a key.
        write_atomic(path, pem, replace=False)
    return key


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    write_atomic(path, cert.public_bytes(serialization.Encoding.PEM))


# -- CAs and leaves -----------------------------------------------------------------------------


def _ensure_ca(stem: Path, common_name: str, now: dt.datetime, lifetime: dt.timedelta) -> _Issuer:
    key_path, cert_path = _paths(stem)
    key = _key_or_new(key_path)
    cert = _load_cert(cert_path)
    if cert is not None and cert.public_key() == key.public_key() and cert.not_valid_after_utc > now:
        return _Issuer(key, cert)
    cert = _ca_certificate(key, common_name, now, lifetime)
    _write_cert(cert_path, cert)
    log.info("made the LGWAN test CA %s", cert_path.name)
    return _Issuer(key, cert)


def _ensure_leaf(stem: Path, issuer: _Issuer, profile: _Profile, now: dt.datetime, lifetime: dt.timedelta) -> None:
    key_path, cert_path = _paths(stem)
    key = _key_or_new(key_path)
    cert = _load_cert(cert_path)
    if cert is not None and _fits(cert, key, issuer, profile, now):
        return
    _write_cert(cert_path, _leaf_certificate(key, issuer, profile, now, lifetime))
    log.info("made the LGWAN test certificate %s", cert_path.name)


def _fits(
    cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, issuer: _Issuer, profile: _Profile, now: dt.datetime
) -> bool:
    if cert.public_key() != key.public_key() or cert.not_valid_after_utc <= now:
        return False
    try:
        cert.verify_directly_issued_by(issuer.cert)
    except (ValueError, TypeError, InvalidSignature):
        return False  # a CA was remade since: this certificate would be refused
    return set(_san(cert)) == set(profile.hosts)


def _san(cert: x509.Certificate) -> list[x509.GeneralName]:
    try:
        return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return []


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _TEST_ORG),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca_certificate(
    key: ec.EllipticCurvePrivateKey, common_name: str, now: dt.datetime, lifetime: dt.timedelta
) -> x509.Certificate:
    name = _name(common_name)
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + lifetime)
        # path_length 0: a CA of this PKI issues end-entity certificates only.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _leaf_certificate(
    key: ec.EllipticCurvePrivateKey, issuer: _Issuer, profile: _Profile, now: dt.datetime, lifetime: dt.timedelta
) -> x509.Certificate:
    public = key.public_key()
    # A leaf never outlives its CA: a verifier would refuse the remainder anyway.
    not_after = min(now + lifetime, issuer.cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(profile.common_name))
        .issuer_name(issuer.cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([profile.usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    )
    if profile.hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(profile.hosts)), critical=False)
    return builder.sign(issuer.key, hashes.SHA256())


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


# -- names ------------------------------------------------------------------------------------


def _checked_server_name(name: str) -> str:
    if not _SERVER_NAME.fullmatch(name):
        raise ValueError(f"bad LGWAN server name {name!r}: use letters, digits, '-' and '_' (e.g. a municipality code)")
    return name


def _alt_names(hosts: Sequence[str]) -> tuple[x509.GeneralName, ...]:
    """The SAN entries for `hosts`, in order, each once: IP addresses as such, others as DNS
    names. Raises ValueError for a host that is neither."""
    names: list[x509.GeneralName] = []
    for host in hosts:
        entry = _alt_name(host)
        if entry not in names:
            names.append(entry)
    return tuple(names)


def _alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not _DNS_NAME.fullmatch(host):
        raise ValueError(f"bad LGWAN host {host!r}: give an IP address or a DNS name")
    return x509.DNSName(host.lower())
