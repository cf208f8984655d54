"""Helpers of the PKI and card tests: a test CA per session, residents in a real database,
and certificates from *other* CAs (to prove that they are refused)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from certserver.db.models.registry import Household, Municipality, Resident
from certserver.db.session import make_engine, make_session_factory
from certserver.pki import profiles
from certserver.pki.ca import CaBundle

MUNICIPALITY = "08217"  # 取手市

# For tests about input checks rather than storage: the database backend is not what they
# specify, so they run on SQLite only (the storage tests run on both backends).
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="session")
def ca_bundle(tmp_path_factory: pytest.TempPathFactory) -> CaBundle:
    """One set of test CAs for the whole session (key generation is the slow part)."""
    return CaBundle.create(tmp_path_factory.mktemp("pki") / "ca")


@dataclass
class Db:
    engine: Engine
    factory: sessionmaker[Session]


@pytest.fixture
def db(db_url: str) -> Iterator[Db]:
    engine = make_engine(db_url)
    try:
        yield Db(engine, make_session_factory(engine))
    finally:
        engine.dispose()


def add_resident(
    session: Session,
    resident_id: str = "toride-0001",
    *,
    name: str = "取手　太郎",
    birth_date: dt.date = dt.date(1980, 2, 17),
    sex: str = "男",
    address: str = "茨城県取手市寺田５１３９番地",
    my_number: str | None = "123456789018",
    status: str = "active",
) -> Resident:
    """A resident of 取手市 (municipality and household created when missing)."""
    if session.get(Municipality, MUNICIPALITY) is None:
        session.add(
            Municipality(
                code=MUNICIPALITY,
                name="取手市",
                name_en="Toride City",
                prefecture="茨城県",
                mayor_title="取手市長",
                mayor_name="試験　市長",
                participating=True,
            )
        )
        session.flush()
    household_id = f"hh-{resident_id}"
    session.add(Household(id=household_id, municipality_code=MUNICIPALITY, address=address))
    session.flush()
    resident = Resident(
        id=resident_id,
        municipality_code=MUNICIPALITY,
        household_id=household_id,
        name=name,
        name_kana=None,
        birth_date=birth_date,
        sex=sex,
        address=address,
        zokugara="世帯主",
        became_resident_on=dt.date(2010, 4, 1),
        address_since=dt.date(2010, 4, 1),
        my_number=my_number,
        status=status,
    )
    session.add(resident)
    session.flush()
    return resident


def foreign_ca_with_same_names(ca: CaBundle) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A CA whose certificate copies the service's auth CA names but has another key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    real = ca.auth_ca.cert
    cert = (
        x509.CertificateBuilder()
        .subject_name(real.subject)
        .issuer_name(real.issuer)
        .public_key(key.public_key())
        .serial_number(real.serial_number)
        .not_valid_before(real.not_valid_before_utc)
        .not_valid_after(real.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def forge_like(
    cert_der: bytes,
    issuer_key: rsa.RSAPrivateKey,
    *,
    public_key: rsa.RSAPublicKey | None = None,
    serial: int | None = None,
) -> bytes:
    """A copy of a certificate (names, serial, dates) signed by another key."""
    original = x509.load_der_x509_certificate(cert_der)
    builder = (
        x509.CertificateBuilder()
        .subject_name(original.subject)
        .issuer_name(original.issuer)
        .public_key(public_key or original.public_key())  # type: ignore[arg-type]
        .serial_number(serial if serial is not None else original.serial_number)
        .not_valid_before(original.not_valid_before_utc)
        .not_valid_after(original.not_valid_after_utc)
    )
    for ext in original.extensions:
        builder = builder.add_extension(ext.value, ext.critical)
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def external_ca_and_card(now: dt.datetime) -> tuple[x509.Certificate, x509.Certificate, rsa.RSAPrivateKey]:
    """A stand-in for a real J-LIS root and a real card's auth certificate under it."""
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(x509.NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "Stand-in external CA"),
        ]
    )
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=30))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    card_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    card = (
        x509.CertificateBuilder()
        .subject_name(profiles.card_subject("8439ABCDEFGHIJKLMNOP"))
        .issuer_name(name)
        .public_key(card_key.public_key())
        .serial_number(0x0705D990)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=900))
        .sign(ca_key, hashes.SHA256())
    )
    return ca_cert, card, card_key


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def card_json(path: Path) -> dict[str, Any]:
    """A card file as raw JSON."""
    return json.loads(path.read_text(encoding="utf-8"))


def database_at(folder: Path, revision: str) -> tuple[Any, Engine]:
    """(Alembic config, engine) of a SQLite database in `folder` migrated to `revision`,
    with the demo resident toride-0001 (for the migrations' carry-over tests)."""
    from alembic import command

    from certserver.db.session import alembic_config, transaction

    url = f"sqlite:///{folder / 'm.db'}"
    config = alembic_config(url)
    command.upgrade(config, revision)
    engine = make_engine(url)
    with transaction(sessionmaker(engine)) as session:
        add_resident(session)
    return config, engine


def insert_card_row(engine: Engine, holder_column: str, holder: str) -> None:
    """A card certificate row '0A' written as a migration of its time found it: the holder
    column is `resident_id` before 0008, `municipality_code` after."""
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO card_certificates (serial, card_id, {holder_column}, purpose, subject_cn, issued_at, "
                "not_before, not_after, status, enrolled_real_card, certificate_der) VALUES "
                "('0A', :card, :holder, 'auth', 'TESTONLY', :t, :t, :t, 'active', 0, x'3000')"
            ),
            {"card": "c" * 32, "holder": holder, "t": "2026-01-01 00:00:00"},
        )
