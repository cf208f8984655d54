"""Throw-away test CAs and card files for the card tests (the issuing service has its own,
real CA; these tests must not depend on it)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from konbini_common.cardfile import CardFile, KenhojoData, PinRecord

PIN = "1234"
PASSWORD = "ABC123"


@dataclass(frozen=True)
class TestCa:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@cache
def _rsa_key(slot: int) -> rsa.RSAPrivateKey:
    # RSA-2048 generation takes ~50-200 ms; tests reuse a few keys per process.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def test_ca(purpose: str = "auth") -> TestCa:
    key = _rsa_key(100 + (purpose == "sign"))
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "JPKI-EMULATOR TEST ONLY"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"throw-away {purpose} CA of the card tests"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return TestCa(key, cert)


def _leaf(ca: TestCa, key: rsa.RSAPrivateKey, cn: str) -> bytes:
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365 * 5))
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .sign(ca.key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_card(path: Path, *, slot: int = 0, pin: str = PIN, password: str = PASSWORD, with_sign: bool = True) -> Path:
    """Write a fresh card file at `path` (keys from key `slot`, certificates from the test CAs)."""
    auth_key, sign_key = _rsa_key(2 * slot), _rsa_key(2 * slot + 1)
    auth_ca, sign_ca = test_ca("auth"), test_ca("sign")
    card = CardFile(
        auth_certificate=_leaf(auth_ca, auth_key, f"TESTONLYAUTH{slot:08d}"),
        auth_ca_certificate=auth_ca.der(),
        auth_private_key=_pem(auth_key),
        sign_certificate=_leaf(sign_ca, sign_key, f"TESTONLYSIGN{slot:08d}") if with_sign else None,
        sign_ca_certificate=sign_ca.der() if with_sign else None,
        sign_private_key=_pem(sign_key) if with_sign else None,
        kenhojo=KenhojoData(
            my_number="123456789018",
            name="取手　太郎",
            address="茨城県取手市寺田５１３９番地",
            birth_date="19800217",
            sex="1",
        ),
        pins={"auth": PinRecord.new(pin, 3), "sign": PinRecord.new(password, 5), "kenhojo": PinRecord.new(pin, 3)},
        label=f"test card {slot}",
    )
    card.save(path)
    return path
