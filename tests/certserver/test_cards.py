"""Card service: issue a virtual card to a resident, revoke, list, enrol a real card's
certificate; every operation on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pki_support import (  # noqa: F401 - fixtures
    Db,
    add_resident,
    ca_bundle,
    card_json,
    db,
    der,
    external_ca_and_card,
    sqlite_only,
)
from sqlalchemy import select

from certserver.db.models.pki import CardCertificate, TrustedCa
from certserver.db.models.registry import ResidentCard
from certserver.db.session import transaction
from certserver.pki.ca import CaBundle
from certserver.services import cards

NOW = dt.datetime(2026, 11, 26, 3, 0, tzinfo=dt.UTC)


def _issue(db: Db, ca: CaBundle, out: Path, resident_id: str = "toride-0001", **resident) -> cards.IssuedCard:
    with transaction(db.factory) as session:
        add_resident(session, resident_id, **resident)
    with transaction(db.factory) as session:
        return cards.issue_card(session, ca, resident_id, pin="1234", password="ABC123", out=out, now=NOW)


def test_issue_records_both_certificates_and_writes_a_private_card_file(
    db: Db, ca_bundle: CaBundle, tmp_path: Path
) -> None:
    out = tmp_path / "taro.card.json"
    issued = _issue(db, ca_bundle, out)
    assert issued.path == out and issued.resident_id == "toride-0001"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    raw = card_json(out)
    assert raw["format"] == "konbini-kiosk card file" and raw["version"] == 1
    assert raw["kenhojo"] == {
        "my_number": "123456789018",
        "name": "取手　太郎",
        "address": "茨城県取手市寺田５１３９番地",
        "birth_date": "19800217",
        "sex": "1",
    }
    with db.factory() as session:
        rows = {r.purpose: r for r in session.scalars(select(CardCertificate))}
    assert set(rows) == {"auth", "sign"}
    assert rows["auth"].serial == issued.auth_serial and rows["sign"].serial == issued.sign_serial
    assert rows["auth"].card_id == rows["sign"].card_id
    assert rows["auth"].status == "active" and rows["auth"].card_file == str(out.resolve())
    assert rows["auth"].not_after == dt.datetime(2031, 2, 17, 14, 59, 59, tzinfo=dt.UTC)
    import base64

    assert base64.b64decode(raw["jpki"]["auth_certificate"]) == rows["auth"].certificate_der
    assert base64.b64decode(raw["jpki"]["auth_ca_certificate"]) == ca_bundle.auth_ca.der


def test_card_file_never_contains_the_pin_or_password(db: Db, ca_bundle: CaBundle, tmp_path: Path) -> None:
    out = tmp_path / "card.json"
    _issue(db, ca_bundle, out)
    text = out.read_text(encoding="utf-8")
    raw = card_json(out)
    assert "ABC123" not in text
    assert all(not record["verifier"].endswith("$1234") for record in raw["pins"].values())
    assert {name: r["tries_left"] for name, r in raw["pins"].items()} == {"auth": 3, "sign": 5, "kenhojo": 3}
    assert all(r["verifier"].startswith("pbkdf2-sha256$2000$") for r in raw["pins"].values())


def test_under_fifteen_gets_no_signing_certificate(db: Db, ca_bundle: CaBundle, tmp_path: Path) -> None:
    issued = _issue(
        db,
        ca_bundle,
        tmp_path / "child.json",
        "toride-0002",
        name="取手　花子",
        birth_date=dt.date(2013, 5, 5),
        sex="女",
        my_number="234567890123",
    )
    assert issued.sign_serial is None
    raw = card_json(tmp_path / "child.json")
    assert raw["jpki"]["sign_certificate"] is None and raw["jpki"]["sign_private_key"] is None
    assert raw["kenhojo"]["sex"] == "2"
    with db.factory() as session:
        assert [r.purpose for r in session.scalars(select(CardCertificate))] == ["auth"]


@sqlite_only
@pytest.mark.parametrize(
    ("pin", "password"),
    [
        ("123", "ABC123"),
        ("12345", "ABC123"),
        ("12a4", "ABC123"),
        ("1234", "abc123"),
        ("1234", "ABC12"),
        ("1234", "A" * 17),
        ("1234", "ABC-123"),
        ("１２３４", "ABC123"),
    ],
)
def test_bad_pin_or_password_format_is_refused_before_anything_is_made(
    db: Db, ca_bundle: CaBundle, tmp_path: Path, pin: str, password: str
) -> None:
    with transaction(db.factory) as session:
        add_resident(session)
    out = tmp_path / "card.json"
    with pytest.raises(cards.InvalidPinFormatError), transaction(db.factory) as session:
        cards.issue_card(session, ca_bundle, "toride-0001", pin=pin, password=password, out=out, now=NOW)
    assert not out.exists()
    with db.factory() as session:
        assert session.scalars(select(CardCertificate)).all() == []


@sqlite_only
def test_unknown_resident_is_refused(db: Db, ca_bundle: CaBundle, tmp_path: Path) -> None:
    with pytest.raises(cards.ResidentNotFoundError, match="nobody"), transaction(db.factory) as session:
        cards.issue_card(session, ca_bundle, "nobody", pin="1234", password="ABC123", out=tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("status", ["moved_out", "deceased"])
def test_moved_out_or_deceased_resident_gets_no_card(db: Db, ca_bundle: CaBundle, tmp_path: Path, status: str) -> None:
    with transaction(db.factory) as session:
        add_resident(session, status=status)
    with pytest.raises(cards.ResidentNotEligibleError, match=status), transaction(db.factory) as session:
        cards.issue_card(session, ca_bundle, "toride-0001", pin="1234", password="ABC123", out=tmp_path / "x.json")


def test_existing_card_file_is_not_overwritten(db: Db, ca_bundle: CaBundle, tmp_path: Path) -> None:
    out = tmp_path / "card.json"
    out.write_text("someone else's card")
    with transaction(db.factory) as session:
        add_resident(session)
    with pytest.raises(cards.CardFileExistsError), transaction(db.factory) as session:
        cards.issue_card(session, ca_bundle, "toride-0001", pin="1234", password="ABC123", out=out, now=NOW)
    assert out.read_text() == "someone else's card"
    with db.factory() as session:
        assert session.scalars(select(CardCertificate)).all() == []


def test_revoke_by_either_serial_revokes_the_whole_card(db: Db, ca_bundle: CaBundle, tmp_path: Path) -> None:
    issued = _issue(db, ca_bundle, tmp_path / "card.json")
    later = NOW + dt.timedelta(days=3)
    with transaction(db.factory) as session:
        assert issued.sign_serial is not None
        cards.revoke_card(session, issued.sign_serial.lower(), "lost", now=later)
    with db.factory() as session:
        rows = session.scalars(select(CardCertificate)).all()
    assert {(r.status, r.revocation_reason, r.revoked_at) for r in rows} == {("revoked", "lost", later)}


def test_revoking_twice_or_an_unknown_serial_is_a_clear_error(db: Db, ca_bundle: CaBundle, tmp_path: Path) -> None:
    issued = _issue(db, ca_bundle, tmp_path / "card.json")
    with transaction(db.factory) as session:
        cards.revoke_card(session, issued.auth_serial, "deceased", now=NOW)
    with pytest.raises(cards.AlreadyRevokedError), transaction(db.factory) as session:
        cards.revoke_card(session, issued.auth_serial, "lost", now=NOW)
    with pytest.raises(cards.CertificateNotFoundError), transaction(db.factory) as session:
        cards.revoke_card(session, "0DEADBEEF0", "lost", now=NOW)
    with pytest.raises(ValueError, match="unknown revocation reason"), transaction(db.factory) as session:
        cards.revoke_card(session, issued.auth_serial, "bored", now=NOW)


def test_revoke_cards_of_resident_revokes_only_that_residents_active_certificates(
    db: Db, ca_bundle: CaBundle, tmp_path: Path
) -> None:
    _issue(db, ca_bundle, tmp_path / "a.json")
    with transaction(db.factory) as session:
        cards.issue_card(
            session, ca_bundle, "toride-0001", pin="1234", password="ABC123", out=tmp_path / "a2.json", now=NOW
        )
    other = _issue(db, ca_bundle, tmp_path / "b.json", "toride-0003", name="取手　次郎", my_number="345678901234")
    with transaction(db.factory) as session:
        assert cards.revoke_cards_of_resident(session, "toride-0001", "moved_out", now=NOW) == 4
    with transaction(db.factory) as session:
        assert cards.revoke_cards_of_resident(session, "toride-0001", "moved_out", now=NOW) == 0
    with db.factory() as session:
        listed = cards.list_cards(session)
    assert {c.status for c in listed if c.resident_id == "toride-0001"} == {"revoked"}
    assert {c.serial for c in listed if c.status == "active"} == {other.auth_serial, other.sign_serial}


def test_list_cards_filters_by_resident(db: Db, ca_bundle: CaBundle, tmp_path: Path) -> None:
    first = _issue(db, ca_bundle, tmp_path / "a.json")
    _issue(db, ca_bundle, tmp_path / "b.json", "toride-0003", name="取手　次郎", my_number="345678901234")
    with db.factory() as session:
        mine = cards.list_cards(session, "toride-0001")
        assert len(cards.list_cards(session)) == 4
    assert [c.serial for c in mine] == [first.auth_serial, first.sign_serial]
    assert [c.purpose for c in mine] == ["auth", "sign"]


# -- enrolment of a real card's certificate -----------------------------------------------


def test_enroll_registers_a_real_card_under_an_explicitly_trusted_ca(db: Db, ca_bundle: CaBundle) -> None:
    ca_cert, card, _ = external_ca_and_card(NOW)
    with transaction(db.factory) as session:
        add_resident(session)
    with transaction(db.factory) as session:
        summary = cards.enroll_real_card(
            session, ca_bundle, "toride-0001", der(card), ca_cert.public_bytes(serialization.Encoding.PEM), now=NOW
        )
    assert summary.serial == "0705D990" and summary.enrolled_real_card and summary.purpose == "auth"
    with db.factory() as session:
        trusted = session.scalars(select(TrustedCa)).all()
    assert [t.certificate_der for t in trusted] == [der(ca_cert)]


def test_enroll_refuses_a_certificate_the_given_ca_did_not_issue(db: Db, ca_bundle: CaBundle) -> None:
    ca_cert, _, _ = external_ca_and_card(NOW)
    _, other_card, _ = external_ca_and_card(NOW)
    with transaction(db.factory) as session:
        add_resident(session)
    with pytest.raises(cards.EnrollmentError, match="not issued by the given CA"), transaction(db.factory) as session:
        cards.enroll_real_card(session, ca_bundle, "toride-0001", der(other_card), der(ca_cert), now=NOW)
    with db.factory() as session:
        assert session.scalars(select(TrustedCa)).all() == []


def test_enroll_refuses_a_non_ca_trust_anchor_and_garbage(db: Db, ca_bundle: CaBundle) -> None:
    _, card, _ = external_ca_and_card(NOW)
    with transaction(db.factory) as session:
        add_resident(session)
    with pytest.raises(cards.EnrollmentError, match="not a CA"), transaction(db.factory) as session:
        cards.enroll_real_card(session, ca_bundle, "toride-0001", der(card), der(card), now=NOW)
    with pytest.raises(cards.EnrollmentError, match="not DER or PEM"), transaction(db.factory) as session:
        cards.enroll_real_card(session, ca_bundle, "toride-0001", b"nonsense", b"nonsense", now=NOW)


def test_enroll_refuses_the_same_certificate_twice(db: Db, ca_bundle: CaBundle) -> None:
    ca_cert, card, _ = external_ca_and_card(NOW)
    with transaction(db.factory) as session:
        add_resident(session)
    with transaction(db.factory) as session:
        cards.enroll_real_card(session, ca_bundle, "toride-0001", der(card), der(ca_cert), now=NOW)
    with pytest.raises(cards.EnrollmentError, match="already registered"), transaction(db.factory) as session:
        cards.enroll_real_card(session, ca_bundle, "toride-0001", der(card), der(ca_cert), now=NOW)


def test_signing_certificate_names_the_municipality_in_romaji_and_auth_does_not(
    db: Db, ca_bundle: CaBundle, tmp_path: Path
) -> None:
    from cryptography import x509

    _issue(db, ca_bundle, tmp_path / "card.json")
    with db.factory() as session:
        rows = {
            r.purpose: x509.load_der_x509_certificate(r.certificate_der)
            for r in session.scalars(select(CardCertificate))
        }
    oids = x509.NameOID
    assert [a.oid for a in rows["sign"].subject] == [oids.COUNTRY_NAME, oids.LOCALITY_NAME, oids.COMMON_NAME]
    assert rows["sign"].subject.get_attributes_for_oid(oids.LOCALITY_NAME)[0].value == "Toride City"
    assert [a.oid for a in rows["auth"].subject] == [oids.COUNTRY_NAME, oids.COMMON_NAME]


def test_enroll_refuses_the_services_own_ca_as_an_external_one(db: Db, ca_bundle: CaBundle, tmp_path: Path) -> None:
    issued = _issue(db, ca_bundle, tmp_path / "card.json")
    own_cert = card_json(tmp_path / "card.json")["jpki"]["auth_certificate"]
    import base64

    with pytest.raises(cards.EnrollmentError, match="own test CA"), transaction(db.factory) as session:
        cards.enroll_real_card(
            session, ca_bundle, "toride-0001", base64.b64decode(own_cert), ca_bundle.auth_ca.der, now=NOW
        )
    with db.factory() as session:
        assert [c.enrolled_real_card for c in cards.list_cards(session)] == [False, False]
        assert session.scalars(select(TrustedCa)).all() == []
    assert issued.auth_serial


def test_cards_issued_at_the_same_time_each_belong_to_their_own_resident(
    db: Db, ca_bundle: CaBundle, tmp_path: Path
) -> None:
    """Several operators issuing at once share no temporary state: every card file holds the
    certificate registered to its own resident (Kawasaki 2023, service.md §7)."""
    import base64
    from concurrent.futures import ThreadPoolExecutor

    people = [f"toride-{i:04d}" for i in range(6)]
    with transaction(db.factory) as session:
        for i, resident_id in enumerate(people):
            add_resident(session, resident_id, name=f"取手　{i}郎", my_number=f"{900000000000 + i}")

    def issue(resident_id: str) -> cards.IssuedCard:
        with transaction(db.factory) as session:
            return cards.issue_card(
                session,
                ca_bundle,
                resident_id,
                pin="1234",
                password="ABC123",
                out=tmp_path / f"{resident_id}.json",
                now=NOW,
            )

    with ThreadPoolExecutor(max_workers=3) as pool:
        issued = list(pool.map(issue, people))
    with db.factory() as session:
        rows = session.execute(
            select(CardCertificate.certificate_der, ResidentCard.resident_id).join(
                ResidentCard, ResidentCard.serial == CardCertificate.serial
            )
        ).all()
        owner = {der: resident_id for der, resident_id in rows}  # noqa: C416 - Rows, not pairs, to a type checker
    assert len(owner) == 2 * len(people)
    for card in issued:
        raw = card_json(card.path)
        assert owner[base64.b64decode(raw["jpki"]["auth_certificate"])] == card.resident_id
        assert owner[base64.b64decode(raw["jpki"]["sign_certificate"])] == card.resident_id
        assert raw["kenhojo"]["name"] == f"取手　{people.index(card.resident_id)}郎"


def _statuses(db: Db) -> dict[str, tuple[str, str | None]]:
    with db.factory() as session:
        return {r.purpose: (r.status, r.revocation_reason) for r in session.scalars(select(CardCertificate))}


@pytest.mark.parametrize("given", ["sign", "auth"])
def test_a_change_of_the_basic_four_items_revokes_only_the_signing_certificate(
    db: Db, ca_bundle: CaBundle, tmp_path: Path, given: str
) -> None:
    """jpki.md §11: after a move within the municipality the card still authenticates."""
    issued = _issue(db, ca_bundle, tmp_path / "card.json")
    serial = issued.sign_serial if given == "sign" else issued.auth_serial
    assert serial is not None
    with transaction(db.factory) as session:
        revoked = cards.revoke_card(session, serial, "attributes_changed", now=NOW)
    assert revoked == [issued.sign_serial]
    assert _statuses(db) == {"auth": ("active", None), "sign": ("revoked", "attributes_changed")}
    with pytest.raises(cards.AlreadyRevokedError, match="signing certificate"), transaction(db.factory) as session:
        cards.revoke_card(session, serial, "attributes_changed", now=NOW)
    # Losing the card later ends what is left: the user-authentication certificate.
    with transaction(db.factory) as session:
        assert cards.revoke_card(session, serial, "lost", now=NOW) == [issued.auth_serial]
    assert _statuses(db) == {"auth": ("revoked", "lost"), "sign": ("revoked", "attributes_changed")}


@pytest.mark.parametrize("reason", ["moved_out", "lost", "deceased"])
def test_moving_out_loss_or_death_revokes_both_and_names_them(
    db: Db, ca_bundle: CaBundle, tmp_path: Path, reason: str
) -> None:
    issued = _issue(db, ca_bundle, tmp_path / "card.json")
    with transaction(db.factory) as session:
        assert cards.revoke_card(session, issued.auth_serial, reason, now=NOW) == [
            issued.auth_serial,
            issued.sign_serial,
        ]
    assert _statuses(db) == {"auth": ("revoked", reason), "sign": ("revoked", reason)}


def test_attribute_change_of_a_resident_revokes_only_signing_certificates(
    db: Db, ca_bundle: CaBundle, tmp_path: Path
) -> None:
    _issue(db, ca_bundle, tmp_path / "card.json")
    with transaction(db.factory) as session:
        assert cards.revoke_cards_of_resident(session, "toride-0001", "attributes_changed", now=NOW) == 1
    assert _statuses(db) == {"auth": ("active", None), "sign": ("revoked", "attributes_changed")}


def test_a_foreign_residents_card_certificates_end_no_later_than_the_period_of_stay(
    db: Db, ca_bundle: CaBundle, tmp_path: Path
) -> None:
    """toride-0020's stay ends 2029-03-31; the fifth birthday would be 2031-07-02."""
    with transaction(db.factory) as session:
        resident = add_resident(
            session, "toride-0020", name="NGUYEN VAN AN", birth_date=dt.date(1994, 7, 2), my_number="234567890123"
        )
        resident.nationality = "ベトナム"
        resident.period_of_stay = "5年"
        resident.period_expires_on = dt.date(2029, 3, 31)
    with transaction(db.factory) as session:
        cards.issue_card(
            session, ca_bundle, "toride-0020", pin="1234", password="ABC123", out=tmp_path / "card.json", now=NOW
        )
    with db.factory() as session:
        rows = session.scalars(select(CardCertificate)).all()
    end_of_stay = dt.datetime(2029, 3, 31, 14, 59, 59, tzinfo=dt.UTC)  # 23:59:59 JST
    assert {r.purpose: r.not_after for r in rows} == {"auth": end_of_stay, "sign": end_of_stay}
    for row in rows:
        assert x509.load_der_x509_certificate(row.certificate_der).not_valid_after_utc == end_of_stay
