"""The service's test CAs: created once with private files, never overwritten, loaded back,
and shaped like the J-LIS roots while saying TEST ONLY (jpki.md §11.1, §11.4)."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from pki_support import ca_bundle  # noqa: F401 - fixture

from certserver.pki.ca import CaBundle, CaError, CaExistsError, CaMissingError


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_create_writes_private_keys_readable_by_the_owner_only(tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca"
    CaBundle.create(ca_dir)
    assert _mode(ca_dir) == 0o700
    keys = sorted(ca_dir.glob("*.key.pem"))
    assert [k.name for k in keys] == ["auth-ca.key.pem", "document-ca.key.pem", "sign-ca.key.pem"]
    for key in keys:
        assert _mode(key) == 0o600
    assert not list(ca_dir.glob(".*tmp")), "no temporary files left behind"


def test_create_refuses_to_overwrite_an_existing_ca(tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca"
    first = CaBundle.create(ca_dir)
    before = (ca_dir / "auth-ca.key.pem").read_bytes()
    with pytest.raises(CaExistsError, match="refusing to overwrite"):
        CaBundle.create(ca_dir)
    assert (ca_dir / "auth-ca.key.pem").read_bytes() == before
    assert CaBundle.load(ca_dir).auth_ca.cert == first.auth_ca.cert


def test_load_returns_the_created_keys_and_certificates(tmp_path: Path) -> None:
    created = CaBundle.create(tmp_path / "ca")
    loaded = CaBundle.load(tmp_path / "ca")
    for purpose in ("auth_ca", "sign_ca", "document_ca"):
        a, b = getattr(created, purpose), getattr(loaded, purpose)
        assert a.cert == b.cert
        assert a.key.public_key().public_numbers() == b.key.public_key().public_numbers()


def test_load_without_init_says_to_run_init(tmp_path: Path) -> None:
    with pytest.raises(CaMissingError, match="run `certserver init` first"):
        CaBundle.load(tmp_path / "nothing-here")


def test_load_refuses_a_key_that_does_not_match_its_certificate(tmp_path: Path) -> None:
    CaBundle.create(tmp_path / "ca")
    other = CaBundle.create(tmp_path / "other")
    (tmp_path / "ca" / "auth-ca.key.pem").write_bytes((tmp_path / "other" / "auth-ca.key.pem").read_bytes())
    assert other is not None
    with pytest.raises(CaError, match="does not match"):
        CaBundle.load(tmp_path / "ca")


def test_load_reports_damaged_files_in_one_line(tmp_path: Path) -> None:
    CaBundle.create(tmp_path / "ca")
    (tmp_path / "ca" / "sign-ca.cert.pem").write_text("garbage")
    with pytest.raises(CaError, match="damaged"):
        CaBundle.load(tmp_path / "ca")


@pytest.mark.parametrize(
    ("attr", "ou"), [("auth_ca", "JPKI for user authentication"), ("sign_ca", "JPKI for digital signature")]
)
def test_card_cas_are_rsa_2048_roots_named_test_only(ca_bundle: CaBundle, attr: str, ou: str) -> None:
    cert = getattr(ca_bundle, attr).cert
    assert cert.subject == cert.issuer
    cert.verify_directly_issued_by(cert)
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048 and key.public_numbers().e == 65537
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "JPKI-EMULATOR TEST ONLY"
    ous = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
    assert any(ou in str(v) for v in ous)
    assert [a.oid for a in cert.subject][:2] == [NameOID.COUNTRY_NAME, NameOID.ORGANIZATION_NAME]
    # Never J-LIS's production or test organisation names.
    assert "O=JPKI," not in cert.subject.rfc4514_string() and "JPKI-TEST," not in cert.subject.rfc4514_string()


def test_card_ca_extensions_follow_the_jlis_root_layout(ca_bundle: CaBundle) -> None:
    cert = ca_bundle.auth_ca.cert
    names = [type(e.value) for e in cert.extensions]
    assert names == [
        x509.KeyUsage,
        x509.SubjectAlternativeName,
        x509.BasicConstraints,
        x509.CRLDistributionPoints,
        x509.SubjectKeyIdentifier,
    ]
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca
    alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    directory = alt.get_values_for_type(x509.DirectoryName)[0]
    assert "テスト専用" in directory.rfc4514_string()
    dp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value[0]
    assert dp.full_name == [x509.DirectoryName(cert.subject)]


def test_card_ca_is_valid_ten_years_until_2359_jst(ca_bundle: CaBundle) -> None:
    cert = ca_bundle.sign_ca.cert
    after = cert.not_valid_after_utc
    assert (after.hour, after.minute, after.second) == (14, 59, 59)
    years = (after - cert.not_valid_before_utc).days / 365.25
    assert 9.9 < years < 10.01


def test_certificates_use_the_long_der_length_form(ca_bundle: CaBundle) -> None:
    der = ca_bundle.auth_ca.cert.public_bytes(serialization.Encoding.DER)
    assert der[:2] == b"\x30\x82"


def test_document_ca_certifies_a_municipality_signing_key(ca_bundle: CaBundle) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = ca_bundle.issue_document_signing_certificate(key.public_key(), "08217", "取手市", now=now)
    cert.verify_directly_issued_by(ca_bundle.document_ca.cert)
    assert "08217" in cert.subject.rfc4514_string()
    assert "取手市" in str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def test_a_failed_create_leaves_no_half_ca_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from certserver.pki import ca as ca_module

    real_write = ca_module._write_private

    def fail_on_sign_ca(path: Path, payload: bytes) -> None:
        if path.name.startswith("sign-ca"):
            raise OSError(28, "No space left on device")
        real_write(path, payload)

    monkeypatch.setattr(ca_module, "_write_private", fail_on_sign_ca)
    with pytest.raises(CaError, match="No space left on device"):
        CaBundle.create(tmp_path / "ca")
    assert list((tmp_path / "ca").iterdir()) == []
    monkeypatch.setattr(ca_module, "_write_private", real_write)
    CaBundle.create(tmp_path / "ca")  # a retry succeeds
    assert CaBundle.load(tmp_path / "ca").sign_ca.cert is not None
