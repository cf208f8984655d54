"""The registry schema guards its own invariants, and the demo data is consistent with the
rules it is meant to show (on SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from datetime import date

import pytest
from registry_support import BUILT_ON, demo_database, demo_session  # noqa: F401 (fixtures: `session`)
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from certserver.db.models.registry import (
    Fee,
    HonsekiRegistration,
    KosekiMember,
    Municipality,
    Resident,
    TaxRecord,
)
from certserver.demo.my_number import is_valid
from certserver.demo.world import TORIDE, TSUKUBA
from certserver.documents.fonts import missing_characters


def _rejects(session: Session, row: object) -> None:
    session.add(row)
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


def test_an_unknown_resident_status_is_rejected_by_the_database(session: Session) -> None:
    resident = session.get(Resident, "toride-0010")
    assert resident is not None
    resident.status = "unknown"
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


def test_my_numbers_are_unique(session: Session) -> None:
    existing = session.get(Resident, "toride-0001")
    assert existing is not None
    clone = Resident(
        id="toride-0999",
        municipality_code=TORIDE,
        household_id=existing.household_id,
        name="見本　花子",
        name_kana=None,
        birth_date=date(1990, 1, 1),
        sex="女",
        address=existing.address,
        zokugara="同居人",
        became_resident_on=date(2020, 1, 1),
        address_since=date(2020, 1, 1),
        my_number=existing.my_number,
        status="active",
        has_gaiji=False,
    )
    _rejects(session, clone)


def test_fee_periods_and_values_are_checked(session: Session) -> None:
    _rejects(session, Fee(municipality_code=TORIDE, kind="juminhyo", fee_yen=-1, valid_from=date(2027, 1, 1), label=""))
    _rejects(
        session,
        Fee(
            municipality_code=TORIDE,
            kind="juminhyo",
            fee_yen=100,
            valid_from=date(2027, 1, 2),
            valid_to=date(2027, 1, 1),
            label="",
        ),
    )


def test_one_tax_record_per_resident_and_year(session: Session) -> None:
    _rejects(
        session,
        TaxRecord(
            resident_id="toride-0001",
            fiscal_year=2026,
            declared=True,
            address_on_jan1="x",
            total_income=0,
            salary_income=0,
            deductions_total=0,
            taxable_income=0,
            municipal_tax=0,
            prefectural_tax=0,
            dependents=0,
        ),
    )


def test_a_registration_cannot_take_effect_before_it_is_made(session: Session) -> None:
    _rejects(
        session,
        HonsekiRegistration(
            resident_id="toride-0010",
            municipality_code=TSUKUBA,
            registered_on=date(2026, 11, 26),
            effective_from=date(2026, 11, 25),
        ),
    )


def test_every_demo_my_number_has_a_valid_check_digit(session: Session) -> None:
    numbers = session.scalars(select(Resident.my_number)).all()
    assert len(numbers) == 13 and all(n is not None and is_valid(n) for n in numbers)
    assert len(set(numbers)) == len(numbers)


def test_demo_addresses_use_full_width_digits(session: Session) -> None:
    for resident in session.scalars(select(Resident)):
        assert not re.search(r"[0-9]", resident.address), resident.id
        assert resident.address.startswith("茨城県取手市")


def test_only_the_gaiji_resident_has_a_character_the_font_lacks(session: Session) -> None:
    for resident in session.scalars(select(Resident)):
        texts = [
            resident.name,
            resident.name_kana or "",
            resident.address,
            resident.previous_address or "",
            resident.honseki or "",
            resident.hitto_sha or "",
            resident.nationality or "",
            resident.residence_status or "",
        ]
        assert bool(missing_characters(texts)) is resident.has_gaiji, resident.id
    gaiji = session.get(Resident, "toride-0070")
    assert gaiji is not None and missing_characters(gaiji.name) == {"\U00020bb7"}


def test_demo_koseki_text_is_printable(session: Session) -> None:
    for member in session.scalars(select(KosekiMember)):
        texts = [member.name, member.father or "", member.mother or "", member.koseki.honseki]
        texts += [event["detail"] for event in member.events]
        assert not missing_characters(texts), member.id


def test_demo_municipalities_are_toride_and_tsukuba(session: Session) -> None:
    toride = session.get(Municipality, TORIDE)
    tsukuba = session.get(Municipality, TSUKUBA)
    assert toride is not None and tsukuba is not None
    assert (toride.name, toride.prefecture, toride.participation_start) == ("取手市", "茨城県", date(2016, 7, 1))
    assert tsukuba.name == "つくば市"
    labels = set(session.scalars(select(Fee.label)))
    assert labels and all(label.startswith("demo value") for label in labels)
