"""Certificate profiles of the test JPKI hierarchy (jpki.md §11).

The layout follows the real J-LIS certificates (extension order, key sizes, `…145959Z`
expiries, the signing certificate's six otherName attributes) while every name says
TEST ONLY and the policy OIDs sit under the documentation-only enterprise arc of RFC 5612,
so no certificate made here can pass for a real one.
"""

from __future__ import annotations

import datetime as dt
import string
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificateIssuerPublicKeyTypes,
)
from cryptography.x509.oid import NameOID, ObjectIdentifier

from certserver.pki import entropy
from konbini_common.japan import ERAS, JST, age_on

RSA_KEY_SIZE = 2048  # jpki.md §11.1-11.3: RSA-2048, e=65537 everywhere
RSA_PUBLIC_EXPONENT = 65537
CA_VALIDITY_YEARS = 10  # jpki.md §11.1: roots are valid for 10 years
CARD_VALIDITY_BIRTHDAYS = 5  # jpki.md §11.2: until the 5th birthday after issuance
SIGN_CERT_MIN_AGE = 15  # jpki.md §11.3: no signing certificate under 15

_TEST_ORG = "JPKI-EMULATOR TEST ONLY"
_TEST_OU = "Synthetic test CA - not valid for any real use"

# Private policy OIDs standing in for J-LIS's jpki-cp-auth-class30 (…8.5.1.3.30) and the
# signing policy (…8.5.1.1.20). jpki.md §11.4 suggested a `2.25.<uuid>` arc, but a 128-bit arc
# is refused by strict parsers (Go's crypto/x509: "invalid certificate policies"; old pyca
# releases); every arc here fits in 31 bits. 1.3.6.1.4.1.32473 is IANA's enterprise number
# reserved for documentation and examples (RFC 5612), so no real policy can ever live there;
# below it the J-LIS layout is mirrored (8.5.1.3.30 auth, 8.5.1.1.20 sign).
TEST_POLICY_ARC = "1.3.6.1.4.1.32473.392"
AUTH_POLICY_OID = ObjectIdentifier(f"{TEST_POLICY_ARC}.8.5.1.3.30")
SIGN_POLICY_OID = ObjectIdentifier(f"{TEST_POLICY_ARC}.8.5.1.1.20")
DOCUMENT_POLICY_OID = ObjectIdentifier(f"{TEST_POLICY_ARC}.9.1")  # municipal PDF signatures

# 署名用電子証明書 subjectAltName attribute types (jpki.md §11.3), kept as the real ones:
# they identify data formats that clients parse.
OID_NAME = ObjectIdentifier("1.2.392.200149.8.5.5.1")  # 氏名
OID_NAME_SUBSTITUTION = ObjectIdentifier("1.2.392.200149.8.5.5.2")  # 氏名代替文字位置
OID_SEX = ObjectIdentifier("1.2.392.200149.8.5.5.3")  # 性別
OID_BIRTH_DATE = ObjectIdentifier("1.2.392.200149.8.5.5.4")  # 生年月日
OID_ADDRESS = ObjectIdentifier("1.2.392.200149.8.5.5.5")  # 住所
OID_ADDRESS_SUBSTITUTION = ObjectIdentifier("1.2.392.200149.8.5.5.6")  # 住所代替文字位置

CN_PREFIX = "TESTONLY"
_CN_ALPHABET = string.ascii_uppercase + string.digits


class Purpose(StrEnum):
    """What a card certificate (and the CA behind it) is for."""

    AUTH = "auth"  # 利用者証明用 (user authentication, EF 000A)
    SIGN = "sign"  # 署名用 (digital signature, EF 0001)


@dataclass(frozen=True)
class CardHolder:
    """The 基本4情報 as a signing certificate carries them (jpki.md §11.3)."""

    name: str  # surname + U+3000 + given name
    birth_date: dt.date
    sex: str  # "1" male, "2" female, "9" not applicable
    address: str  # from the prefecture, full-width digits, no postcode


# -- names ----------------------------------------------------------------------------------


def ca_name(purpose: Purpose | str) -> x509.Name:
    """DN of a test CA. Keeps the substring 'JPKI for user authentication' / 'JPKI for
    digital signature' so purpose-sniffing clients classify it (jpki.md §11.4)."""
    ou = {
        Purpose.AUTH: "JPKI for user authentication (NOT J-LIS)",
        Purpose.SIGN: "JPKI for digital signature (NOT J-LIS)",
        "document": "Municipal document signing (NOT LGPKI)",
    }[purpose]
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _TEST_ORG),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, _TEST_OU),
        ]
    )


def ca_alt_name(purpose: Purpose | str) -> x509.Name:
    """The Japanese directoryName a JPKI CA carries in its subject/issuer alt name."""
    ou = {
        Purpose.AUTH: "公的個人認証サービス利用者証明用（テスト専用）",
        Purpose.SIGN: "公的個人認証サービス署名用（テスト専用）",
        "document": "証明書交付文書署名用（テスト専用）",
    }[purpose]
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "公的個人認証サービスエミュレータ（テスト専用）"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "実在の機関ではありません"),
        ]
    )


def opaque_common_name(municipality_code: str) -> str:
    """A card certificate CN: upper-case alphanumerics, 23 characters, no personal data.

    Like J-LIS test cards it carries the municipality code (jpki.md §11.2); the rest is random.
    """
    code = municipality_code if len(municipality_code) == 5 and municipality_code.isdigit() else "00000"
    tail = "".join(entropy.choice(_CN_ALPHABET) for _ in range(10))
    return f"{CN_PREFIX}{code}{tail}"


def card_subject(common_name: str, locality: str | None = None) -> x509.Name:
    """Subject of a card certificate: C=JP, the opaque CN and, for a signing certificate, the
    municipality in romaji as a locality between them (jpki.md §11.3; exact RDNs unverified)."""
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "JP")]
    if locality:
        attributes.append(x509.NameAttribute(NameOID.LOCALITY_NAME, locality))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


# -- serials --------------------------------------------------------------------------------


def new_serial_number() -> int:
    """A random positive 64-bit serial (real cards use 4 bytes; more avoids collisions)."""
    return entropy.randbits(63) | (1 << 62)


def serial_to_hex(serial: int) -> str:
    """The serial as the registry stores it: upper-case hex, even length."""
    text = format(serial, "X")
    return text if len(text) % 2 == 0 else "0" + text


def normalise_serial(text: str) -> str:
    """Accept `0a:1b`, `0x0A1B`, `a1b` ... and return the registry form. Raises ValueError."""
    cleaned = text.strip().replace(":", "").replace(" ", "")
    if cleaned.lower().startswith("0x"):
        cleaned = cleaned[2:]
    return serial_to_hex(int(cleaned, 16))


# -- dates ----------------------------------------------------------------------------------


def _birthday_in(year: int, birth_date: dt.date) -> dt.date:
    # A 29 February birthday falls on 28 February in common years.
    if birth_date.month == 2 and birth_date.day == 29:
        try:
            return dt.date(year, 2, 29)
        except ValueError:
            return dt.date(year, 2, 28)
    return birth_date.replace(year=year)


def nth_birthday_after(birth_date: dt.date, day: dt.date, n: int = CARD_VALIDITY_BIRTHDAYS) -> dt.date:
    """The n-th birthday strictly after `day` (issued on a birthday: that one does not count)."""
    first = _birthday_in(day.year, birth_date)
    if first <= day:
        first = _birthday_in(day.year + 1, birth_date)
    return _birthday_in(first.year + n - 1, birth_date)


def end_of_day_jst(day: dt.date) -> dt.datetime:
    """23:59:59 JST of `day` as aware UTC (`YYMMDD145959Z`, jpki.md §11.1)."""
    return dt.datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=JST).astimezone(dt.UTC)


def card_validity(
    birth_date: dt.date, issued_at: dt.datetime, stay_ends_on: dt.date | None = None
) -> tuple[dt.datetime, dt.datetime]:
    """(not_before, not_after) of a card's certificates issued at `issued_at` (aware): until
    the 5th birthday after issue, and for a foreign resident no later than the last day of
    the period of stay (在留期間の満了の日, `stay_ends_on`), jpki.md §11.2."""
    not_before = issued_at.astimezone(dt.UTC).replace(microsecond=0)
    issue_day = issued_at.astimezone(JST).date()
    last_day = nth_birthday_after(birth_date, issue_day)
    if stay_ends_on is not None:
        last_day = min(last_day, stay_ends_on)
    return not_before, end_of_day_jst(last_day)


CARD_VALIDITY_ADULT_BIRTHDAYS = 10  # the card itself: 10th birthday after issue from age 18
CARD_VALIDITY_MINOR_BIRTHDAYS = 5  # ... 5th birthday for a holder under 18
CARD_ADULT_AGE = 18


def card_expiry(birth_date: dt.date, issued_at: dt.datetime, stay_ends_on: dt.date | None = None) -> dt.date:
    """The card's own expiry (有効期限, printed on the card face and kept in the card's common
    AP): the 10th birthday after issue (5th under 18), for a foreign resident no later than the
    end of the period of stay. The certificates (card_validity) end earlier."""
    issue_day = issued_at.astimezone(JST).date()
    adult = age_on(birth_date, issue_day) >= CARD_ADULT_AGE
    last_day = nth_birthday_after(
        birth_date, issue_day, CARD_VALIDITY_ADULT_BIRTHDAYS if adult else CARD_VALIDITY_MINOR_BIRTHDAYS
    )
    return last_day if stay_ends_on is None else min(last_day, stay_ends_on)


def era_birth_date(birth_date: dt.date) -> str:
    """生年月日 as in the signing certificate: era digit + Gregorian YYYYMMDD (jpki.md §11.3).

    Era digits: 1 明治, 2 大正, 3 昭和, 4 平成, 5 令和 (by the first day of each era).
    """
    digit = next((era.digit for era in ERAS if birth_date >= era.starts_on), "0")
    return digit + birth_date.strftime("%Y%m%d")


# -- DER for the otherName values ------------------------------------------------------------


def der_length(length: int) -> bytes:
    """A DER definite length (short form below 128, else 81/82/... long form)."""
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def der_utf8_string(text: str) -> bytes:
    """DER of a UTF8String (tag 0x0C)."""
    payload = text.encode("utf-8")
    return b"\x0c" + der_length(len(payload)) + payload


_FULL_WIDTH = str.maketrans("0123456789-", "０１２３４５６７８９－")


def full_width_address(address: str) -> str:
    """Address digits and hyphens in full width, as the card and certificate carry them."""
    return address.translate(_FULL_WIDTH)


# The signing certificate carries 氏名 and 住所 in JIS X 0208 (levels 1 and 2) and JIS X 0212
# (補助漢字) only; any other character is replaced by a 代替文字 and flagged `1` in the
# substitution string (jpki.md §11.3). Python's euc_jp codec covers exactly 0208 + 0212 (and
# ASCII), but maps a few 0208 symbols to other code points than the Microsoft tables that
# produce our full-width text: those are translated first.
_JIS_MAPPING_VARIANTS = str.maketrans(
    {
        "\uff0d": "\u2212",  # FULLWIDTH HYPHEN-MINUS -> MINUS SIGN (JIS 1-1-61)
        "\uff5e": "\u301c",  # FULLWIDTH TILDE -> WAVE DASH (1-1-33)
        "\u2225": "\u2016",  # PARALLEL TO -> DOUBLE VERTICAL LINE (1-1-34)
        "\uffe0": "\u00a2",
        "\uffe1": "\u00a3",
        "\uffe2": "\u00ac",  # ￠ ￡ ￢
        "\u2014": "\u2015",  # EM DASH -> HORIZONTAL BAR (1-1-29)
    }
)
# 代替文字 for characters outside the sets: the usual registered form of a common variant.
# The registry picks one by hand for anything else; this emulator falls back to 〓 (1-2-14).
_SUBSTITUTES = {"\U00020bb7": "吉", "髙": "高", "\ufa11": "崎", "德": "徳", "\ufa10": "塚", "\ufa12": "晴"}
_FALLBACK_SUBSTITUTE = "〓"


def in_jis_x0208_or_x0212(char: str) -> bool:
    """Whether a character is in JIS X 0208, JIS X 0212 or ASCII (what the certificate keeps)."""
    try:
        char.translate(_JIS_MAPPING_VARIANTS).encode("euc_jp")
    except UnicodeEncodeError:
        return False
    return True


def jis_substituted(text: str) -> tuple[str, str]:
    """(text as the signing certificate carries it, its 代替文字位置 flags): each character
    outside JIS X 0208/0212 replaced by a substitute and flagged `1`, every other one `0`."""
    chars: list[str] = []
    flags: list[str] = []
    for char in text:
        kept = in_jis_x0208_or_x0212(char)
        chars.append(char if kept else _SUBSTITUTES.get(char, _FALLBACK_SUBSTITUTE))
        flags.append("0" if kept else "1")
    return "".join(chars), "".join(flags)


def signing_alt_names(holder: CardHolder) -> list[x509.GeneralName]:
    """The six otherName entries in the order real cards use: .1, .4, .3, .5, .2, .6."""
    name, name_flags = jis_substituted(holder.name)
    address, address_flags = jis_substituted(full_width_address(holder.address))
    values = (
        (OID_NAME, name),
        (OID_BIRTH_DATE, era_birth_date(holder.birth_date)),
        (OID_SEX, holder.sex),
        (OID_ADDRESS, address),
        (OID_NAME_SUBSTITUTION, name_flags),
        (OID_ADDRESS_SUBSTITUTION, address_flags),
    )
    return [x509.OtherName(oid, der_utf8_string(value)) for oid, value in values]


# -- builders -------------------------------------------------------------------------------


def _key_usage(
    *, digital_signature: bool = False, non_repudiation: bool = False, cert_sign: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=non_repudiation,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _crl_distribution_by_name(issuer_name: x509.Name) -> x509.CRLDistributionPoints:
    # Real JPKI certificates name the CRL by the CA's DN (a directoryName, no URL).
    return x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.DirectoryName(issuer_name)], relative_name=None, reasons=None, crl_issuer=None
            ),
        ]
    )


def build_ca_certificate(
    purpose: Purpose | str, key: CertificateIssuerPrivateKeyTypes, now: dt.datetime
) -> x509.Certificate:
    """A self-signed root in the layout of the J-LIS roots (jpki.md §11.1)."""
    name = ca_name(purpose)
    not_before = now.astimezone(dt.UTC).replace(microsecond=0)
    last_day = now.astimezone(JST).date()
    last_day = last_day.replace(year=last_day.year + CA_VALIDITY_YEARS) - dt.timedelta(days=1)
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(new_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(end_of_day_jst(last_day))
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DirectoryName(ca_alt_name(purpose))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_crl_distribution_by_name(name), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, _signature_hash(key), ecdsa_deterministic=_deterministic(key))
    )


def _deterministic(key: CertificateIssuerPrivateKeyTypes) -> bool | None:
    """RFC 6979 ECDSA for certificates: the same key and contents give the same bytes (so
    `init --seed` repeats), and no per-signature randomness can leak the key."""
    return True if isinstance(key, ec.EllipticCurvePrivateKey) else None


def _signature_hash(key: CertificateIssuerPrivateKeyTypes) -> hashes.SHA256:
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        return hashes.SHA256()
    raise TypeError(f"unsupported CA key type {type(key).__name__}")


def build_card_certificate(
    purpose: Purpose,
    *,
    public_key: rsa.RSAPublicKey,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    issuer_cert: x509.Certificate,
    common_name: str,
    serial: int,
    not_before: dt.datetime,
    not_after: dt.datetime,
    holder: CardHolder | None = None,
    locality: str | None = None,
) -> x509.Certificate:
    """A 利用者証明用 (AUTH) or 署名用 (SIGN, needs `holder`) card certificate. `locality`
    (romaji) goes into a signing certificate's subject only: the auth one carries no place."""
    policy = AUTH_POLICY_OID if purpose is Purpose.AUTH else SIGN_POLICY_OID
    issuer_alt = issuer_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(card_subject(common_name, locality if purpose is Purpose.SIGN else None))
        .issuer_name(issuer_cert.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if purpose is Purpose.AUTH:
        builder = builder.add_extension(_key_usage(digital_signature=True), critical=True)
    else:
        if holder is None:
            raise ValueError("a signing certificate needs the holder's basic four items")
        builder = builder.add_extension(
            _key_usage(digital_signature=True, non_repudiation=True), critical=True
        ).add_extension(x509.SubjectAlternativeName(signing_alt_names(holder)), critical=False)
    builder = (
        builder.add_extension(x509.IssuerAlternativeName(list(issuer_alt)), critical=False)
        .add_extension(x509.CertificatePolicies([x509.PolicyInformation(policy, None)]), critical=False)
        .add_extension(_crl_distribution_by_name(issuer_cert.subject), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(_authority_key_id(issuer_cert), critical=False)
    )
    return builder.sign(issuer_key, _signature_hash(issuer_key), ecdsa_deterministic=_deterministic(issuer_key))


def _authority_key_id(issuer_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def document_signer_subject(municipality_code: str, municipality_name: str) -> x509.Name:
    """Subject of a municipality's document-signing certificate."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _TEST_ORG),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"municipality {municipality_code}"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{municipality_name}（テスト専用）"),
        ]
    )


def build_document_signing_certificate(
    *,
    public_key: CertificateIssuerPublicKeyTypes,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    issuer_cert: x509.Certificate,
    municipality_code: str,
    municipality_name: str,
    now: dt.datetime,
    years: int = 3,
) -> x509.Certificate:
    """A leaf for a municipality's PDF signatures: digitalSignature + nonRepudiation."""
    not_before = now.astimezone(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
    not_after = min(not_before + dt.timedelta(days=365 * years), issuer_cert.not_valid_after_utc)
    return (
        x509.CertificateBuilder()
        .subject_name(document_signer_subject(municipality_code, municipality_name))
        .issuer_name(issuer_cert.subject)
        .public_key(public_key)
        .serial_number(new_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(_key_usage(digital_signature=True, non_repudiation=True), critical=True)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.CertificatePolicies([x509.PolicyInformation(DOCUMENT_POLICY_OID, None)]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(_authority_key_id(issuer_cert), critical=False)
        .sign(issuer_key, _signature_hash(issuer_key), ecdsa_deterministic=_deterministic(issuer_key))
    )
