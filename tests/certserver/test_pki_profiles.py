"""Card certificate profiles (jpki.md §11.2, §11.3, §11.4): what a 利用者証明用 and a 署名用
certificate issued by the test CA contain, byte for byte where clients care."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st
from pki_support import ca_bundle  # noqa: F401 - fixture

from certserver.pki import profiles
from certserver.pki.ca import CaBundle
from certserver.pki.issuance import issue_card_credentials
from certserver.pki.profiles import CardHolder

HOLDER = CardHolder(name="取手　太郎", birth_date=dt.date(1980, 2, 17), sex="1", address="茨城県取手市寺田5139-1")
ISSUED_AT = dt.datetime(2025, 10, 27, 1, 0, tzinfo=dt.UTC)  # 10:00 JST


@pytest.fixture(scope="module")
def credentials(ca_bundle: CaBundle):
    return issue_card_credentials(ca_bundle, holder=HOLDER, municipality_code="08217", issued_at=ISSUED_AT)


# -- validity -----------------------------------------------------------------------------


def test_validity_ends_on_the_fifth_birthday_after_issue_at_2359_jst() -> None:
    # The J-LIS test card of jpki.md §11.2: issued 2025-10-27, born 02-17 -> 2030-02-17.
    not_before, not_after = profiles.card_validity(dt.date(1980, 2, 17), ISSUED_AT)
    assert not_before == ISSUED_AT
    assert not_after == dt.datetime(2030, 2, 17, 14, 59, 59, tzinfo=dt.UTC)


def test_issue_on_the_birthday_itself_counts_from_the_next_one() -> None:
    issued = dt.datetime(2025, 2, 17, 1, 0, tzinfo=dt.UTC)
    assert profiles.card_validity(dt.date(1980, 2, 17), issued)[1].date() == dt.date(2030, 2, 17)


def test_issue_day_is_the_japanese_calendar_day() -> None:
    # 2025-02-16 20:00 UTC is already the 17th (the birthday) in Japan.
    issued = dt.datetime(2025, 2, 16, 20, 0, tzinfo=dt.UTC)
    assert profiles.card_validity(dt.date(1980, 2, 17), issued)[1].date() == dt.date(2030, 2, 17)
    issued_day_before = dt.datetime(2025, 2, 16, 10, 0, tzinfo=dt.UTC)  # 19:00 JST on the 16th
    assert profiles.card_validity(dt.date(1980, 2, 17), issued_day_before)[1].date() == dt.date(2029, 2, 17)


def test_leap_day_birthday_falls_on_28_february_in_common_years() -> None:
    issued = dt.datetime(2025, 3, 1, 1, 0, tzinfo=dt.UTC)
    # Birthdays after issue: 2026-02-28, 2027-02-28, 2028-02-29, 2029-02-28, 2030-02-28.
    assert profiles.nth_birthday_after(dt.date(2000, 2, 29), issued.date()) == dt.date(2030, 2, 28)


@given(
    birth=st.dates(dt.date(1900, 1, 1), dt.date(2024, 12, 31)), day=st.dates(dt.date(2025, 1, 1), dt.date(2060, 12, 31))
)
def test_fifth_birthday_is_after_the_day_and_within_five_years(birth: dt.date, day: dt.date) -> None:
    fifth = profiles.nth_birthday_after(birth, day)
    assert day < fifth
    assert 4 * 365 < (fifth - day).days <= 5 * 366
    assert (fifth.month, fifth.day) == (birth.month, birth.day) or (birth.month, birth.day) == (2, 29)


@pytest.mark.parametrize(
    ("born", "expected"),
    [
        (dt.date(1980, 2, 17), "319800217"),  # 昭和 (the jpki.md example)
        (dt.date(1989, 1, 7), "319890107"),  # last day of 昭和
        (dt.date(1989, 1, 8), "419890108"),  # first day of 平成
        (dt.date(2019, 5, 1), "520190501"),  # 令和
        (dt.date(1926, 12, 24), "219261224"),  # 大正
        (dt.date(1900, 1, 1), "119000101"),  # 明治
    ],
)
def test_birth_date_carries_the_era_digit_and_the_gregorian_date(born: dt.date, expected: str) -> None:
    assert profiles.era_birth_date(born) == expected


# -- DER helpers --------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=2**24))
def test_der_length_round_trips(length: int) -> None:
    encoded = profiles.der_length(length)
    if length < 0x80:
        assert encoded == bytes([length])
    else:
        count = encoded[0] & 0x7F
        assert encoded[0] & 0x80 and len(encoded) == 1 + count
        assert int.from_bytes(encoded[1:], "big") == length
        assert encoded[1] != 0  # minimal


@given(st.text(max_size=300))
def test_utf8_string_der_decodes_back(text: str) -> None:
    der = profiles.der_utf8_string(text)
    assert der[0] == 0x0C
    header = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    assert der[header:].decode("utf-8") == text


@given(st.integers(min_value=1, max_value=2**159))
def test_serial_text_round_trips(serial: int) -> None:
    text = profiles.serial_to_hex(serial)
    assert len(text) % 2 == 0 and text == text.upper()
    assert profiles.normalise_serial(text.lower()) == text
    assert int(profiles.normalise_serial("0x" + text), 16) == serial


# -- auth certificate ---------------------------------------------------------------------


def test_auth_certificate_subject_is_only_country_and_opaque_cn(credentials, ca_bundle: CaBundle) -> None:
    cert = credentials.auth.certificate
    assert [a.oid for a in cert.subject] == [NameOID.COUNTRY_NAME, NameOID.COMMON_NAME]
    cn = str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
    assert cn.startswith("TESTONLY08217") and 20 <= len(cn) <= 23
    assert cn.isalnum() and cn == cn.upper()
    assert "取手" not in cert.subject.rfc4514_string()
    assert cert.issuer == ca_bundle.auth_ca.cert.subject
    cert.verify_directly_issued_by(ca_bundle.auth_ca.cert)


def test_auth_certificate_key_usage_is_critical_digital_signature_only(credentials) -> None:
    usage = credentials.auth.certificate.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature and not usage.value.content_commitment
    assert not usage.value.key_cert_sign and not usage.value.key_encipherment


def test_auth_certificate_has_no_personal_data_anywhere(credentials) -> None:
    der = credentials.auth.der
    for item in ("取手　太郎", "寺田", "19800217", "319800217"):
        assert item.encode("utf-8") not in der
    with pytest.raises(x509.ExtensionNotFound):
        credentials.auth.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_card_certificates_are_rsa_2048_sha256_in_long_der_form(credentials) -> None:
    for issued in (credentials.auth, credentials.sign):
        key = issued.certificate.public_key()
        assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048 and key.public_numbers().e == 65537
        assert issued.certificate.signature_hash_algorithm.name == "sha256"
        assert issued.der[:2] == b"\x30\x82"
        assert issued.certificate.version is x509.Version.v3


def test_policies_are_private_documentation_arcs_not_the_jlis_ones(credentials) -> None:
    for issued, expected in (
        (credentials.auth, profiles.AUTH_POLICY_OID),
        (credentials.sign, profiles.SIGN_POLICY_OID),
    ):
        policies = issued.certificate.extensions.get_extension_for_class(x509.CertificatePolicies).value
        oids = [p.policy_identifier.dotted_string for p in policies]
        assert oids == [expected.dotted_string]
        assert oids[0].startswith("1.3.6.1.4.1.32473.") and "1.2.392.200149.8.5.1" not in oids[0]


def test_issuer_alt_name_is_the_japanese_ca_directory_name(credentials, ca_bundle: CaBundle) -> None:
    ian = credentials.auth.certificate.extensions.get_extension_for_class(x509.IssuerAlternativeName).value
    ca_alt = ca_bundle.auth_ca.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert list(ian) == list(ca_alt)


def test_card_certificate_serials_differ_and_keys_are_fresh(ca_bundle: CaBundle, credentials) -> None:
    other = issue_card_credentials(ca_bundle, holder=HOLDER, municipality_code="08217", issued_at=ISSUED_AT)
    assert other.auth.serial != credentials.auth.serial
    assert other.auth.certificate.public_key() != credentials.auth.certificate.public_key()


# -- sign certificate ---------------------------------------------------------------------


def _other_names(cert: x509.Certificate) -> list[tuple[str, str]]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    out = []
    for name in san:
        assert isinstance(name, x509.OtherName)
        value = name.value
        assert value[0] == 0x0C  # UTF8String inside the [0] EXPLICIT
        header = 2 if value[1] < 0x80 else 2 + (value[1] & 0x7F)
        out.append((name.type_id.dotted_string, value[header:].decode("utf-8")))
    return out


def test_sign_certificate_san_holds_the_basic_four_items_in_card_order(credentials) -> None:
    assert _other_names(credentials.sign.certificate) == [
        ("1.2.392.200149.8.5.5.1", "取手　太郎"),
        ("1.2.392.200149.8.5.5.4", "319800217"),
        ("1.2.392.200149.8.5.5.3", "1"),
        ("1.2.392.200149.8.5.5.5", "茨城県取手市寺田５１３９－１"),
        ("1.2.392.200149.8.5.5.2", "00000"),
        ("1.2.392.200149.8.5.5.6", "0" * len("茨城県取手市寺田５１３９－１")),
    ]


def test_sign_certificate_san_other_name_is_explicitly_tagged_in_der(credentials) -> None:
    # otherName ::= [0] { type-id OID, [0] EXPLICIT UTF8String }: A0 .. 06 .. A0 .. 0C ..
    oid_body = bytes.fromhex("2a83088c9b5508050501")  # 1.2.392.200149.8.5.5.1
    marker = b"\x06" + bytes([len(oid_body)]) + oid_body + b"\xa0"
    assert marker in credentials.sign.der


def test_sign_certificate_key_usage_adds_non_repudiation(credentials, ca_bundle: CaBundle) -> None:
    cert = credentials.sign.certificate
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.content_commitment
    assert cert.issuer == ca_bundle.sign_ca.cert.subject
    cert.verify_directly_issued_by(ca_bundle.sign_ca.cert)
    assert cert.not_valid_after_utc == credentials.auth.certificate.not_valid_after_utc


def test_no_sign_certificate_under_fifteen(ca_bundle: CaBundle) -> None:
    child = CardHolder(name="取手　花子", birth_date=dt.date(2010, 10, 28), sex="2", address="茨城県取手市寺田１")
    young = issue_card_credentials(ca_bundle, holder=child, municipality_code="08217", issued_at=ISSUED_AT)
    assert young.sign is None  # 14 on 2025-10-27, 15 the next day
    older = issue_card_credentials(
        ca_bundle, holder=child, municipality_code="08217", issued_at=ISSUED_AT + dt.timedelta(days=1)
    )
    assert older.sign is not None


def test_private_keys_are_pkcs8_pem(credentials) -> None:
    pem = credentials.auth.private_key_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    key = serialization.load_pem_private_key(pem, password=None)
    assert key.public_key() == credentials.auth.certificate.public_key()


def test_a_foreign_residents_certificates_end_with_the_period_of_stay() -> None:
    """jpki.md §11.2: never beyond 在留期間の満了の日 (23:59:59 JST of that day)."""
    issued = dt.datetime(2026, 11, 26, 1, 0, tzinfo=dt.UTC)
    _, not_after = profiles.card_validity(dt.date(1994, 7, 2), issued, stay_ends_on=dt.date(2029, 3, 31))
    assert not_after == dt.datetime(2029, 3, 31, 14, 59, 59, tzinfo=dt.UTC)
    # A stay that outlasts the fifth birthday does not lengthen the certificates.
    _, not_after = profiles.card_validity(dt.date(1994, 7, 2), issued, stay_ends_on=dt.date(2040, 1, 1))
    assert not_after == dt.datetime(2031, 7, 2, 14, 59, 59, tzinfo=dt.UTC)


def test_characters_outside_jis_x0208_and_x0212_are_substituted_and_flagged(ca_bundle: CaBundle) -> None:
    """jpki.md §11.3: toride-0070's 𠮷 (JIS X 0213 only) is carried as 吉 with flags 10000;
    JIS X 0212 (丂), ASCII and the full-width digits and hyphen stay as they are."""
    holder = CardHolder(
        name="\U00020bb7田　大輔", birth_date=dt.date(1985, 10, 10), sex="1", address="茨城県取手市稲1200-丂髙"
    )
    sign = issue_card_credentials(ca_bundle, holder=holder, municipality_code="08217", issued_at=ISSUED_AT).sign
    assert sign is not None
    values = dict(_other_names(sign.certificate))
    assert values["1.2.392.200149.8.5.5.1"] == "吉田　大輔"
    assert values["1.2.392.200149.8.5.5.2"] == "10000"
    assert values["1.2.392.200149.8.5.5.5"] == "茨城県取手市稲１２００－丂高"
    assert values["1.2.392.200149.8.5.5.6"] == "00000000000001"


def test_a_plain_name_keeps_every_character_with_zero_flags(credentials) -> None:
    values = dict(_other_names(credentials.sign.certificate))
    assert values["1.2.392.200149.8.5.5.2"] == "00000"
    assert values["1.2.392.200149.8.5.5.6"] == "0" * len(values["1.2.392.200149.8.5.5.5"])


def test_the_card_itself_expires_on_the_tenth_birthday_fifth_under_18_or_with_the_stay() -> None:
    issued = dt.datetime(2026, 11, 26, 1, 0, tzinfo=dt.UTC)
    assert profiles.card_expiry(dt.date(1980, 2, 17), issued) == dt.date(2036, 2, 17)
    assert profiles.card_expiry(dt.date(2012, 5, 5), issued) == dt.date(2031, 5, 5)  # 14 years old
    assert profiles.card_expiry(dt.date(1994, 7, 2), issued, dt.date(2029, 3, 31)) == dt.date(2029, 3, 31)
