"""Registry queries the ordering rules need. Read-only: they run in the caller's session."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from certserver.db.models.registry import (
    CertificateSetting,
    Closure,
    Fee,
    HonsekiRegistration,
    Koseki,
    KosekiMember,
    Municipality,
    Resident,
    SealRegistration,
    TaxRecord,
)
from certserver.db.repositories.registry_config import ConfigurationView, detached_copy

T = TypeVar("T")

# Built once with bound parameters: a menu runs about a dozen of these per request, and
# building a statement (coercions, cache key) cost more than running it on SQLite.
_HOUSEHOLD_MEMBERS = select(Resident).where(Resident.household_id == bindparam("household_id")).order_by(Resident.id)
_CERTIFICATE_SETTINGS = select(CertificateSetting).where(
    CertificateSetting.municipality_code == bindparam("municipality_code")
)
_FEES = (
    select(Fee)
    .where(Fee.municipality_code == bindparam("municipality_code"))
    .order_by(Fee.valid_from.desc(), Fee.id.desc())
)
_CLOSURE_ON = (
    select(Closure)
    .where(
        Closure.closed_on == bindparam("day"),
        or_(Closure.municipality_code.is_(None), Closure.municipality_code == bindparam("municipality_code")),
    )
    .order_by(Closure.id)
    .limit(1)
)
_SEAL_REGISTRATIONS = (
    select(SealRegistration)
    .where(SealRegistration.resident_id == bindparam("resident_id"))
    .order_by(SealRegistration.registered_on.desc(), SealRegistration.id.desc())
)
_TAX_RECORD = select(TaxRecord).where(
    TaxRecord.resident_id == bindparam("resident_id"), TaxRecord.fiscal_year == bindparam("fiscal_year")
)
_KOSEKI_ENTRIES = (
    select(KosekiMember)
    .join(Koseki, KosekiMember.koseki_id == Koseki.id)
    .where(
        KosekiMember.resident_id == bindparam("resident_id"), Koseki.municipality_code == bindparam("municipality_code")
    )
    .order_by(Koseki.compiled_on.desc(), KosekiMember.id)
)
_KOSEKI_MEMBERS = (
    select(KosekiMember).where(KosekiMember.koseki_id == bindparam("koseki_id")).order_by(KosekiMember.position)
)
_HONSEKI_REGISTRATIONS = (
    select(HonsekiRegistration)
    .where(HonsekiRegistration.resident_id == bindparam("resident_id"))
    .order_by(HonsekiRegistration.municipality_code)
)


_MUNICIPALITY = select(Municipality).where(Municipality.code == bindparam("code"))


class RegistryRepository:
    """The registry as seen by the rules, over one session.

    One instance serves one request: answers are remembered for its lifetime, because a
    menu asks the same questions once per certificate kind (the household for 住民票 and
    記載事項証明書, the 戸籍 for three kinds, the fee table for each). A resident's data
    does not outlive the instance. The municipalities' configuration (the municipality,
    its settings, fees and closures) comes from the process's configuration cache, which
    the database's revision token keeps current (see registry_config): a stop switch or a
    new fee is seen by the next request either way.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self._memo: dict[Hashable, Any] = {}
        self._configuration = ConfigurationView(session)

    def _once(self, key: Hashable, load: Callable[[], T]) -> T:
        if key not in self._memo:
            self._memo[key] = load()
        return self._memo[key]

    def resident(self, resident_id: str) -> Resident | None:
        return self.session.get(Resident, resident_id)

    def municipality(self, code: str) -> Municipality | None:
        def load(session: Session) -> Municipality | None:
            row = session.scalars(_MUNICIPALITY, {"code": code}).first()
            return None if row is None else detached_copy(row)

        return self._configuration.get(("municipality", code), load)

    def household_members(self, household_id: str) -> Sequence[Resident]:
        return self._once(
            ("household", household_id),
            lambda: self.session.scalars(_HOUSEHOLD_MEMBERS, {"household_id": household_id}).all(),
        )

    def certificate_settings(self, municipality_code: str) -> dict[str, CertificateSetting]:
        def load(session: Session) -> dict[str, CertificateSetting]:
            rows = session.scalars(_CERTIFICATE_SETTINGS, {"municipality_code": municipality_code}).all()
            return {row.kind: detached_copy(row) for row in rows}

        return self._configuration.get(("settings", municipality_code), load)

    def fees_on(self, municipality_code: str, kind: str, day: date) -> Sequence[Fee]:
        """Fee rows in force on `day`, newest `valid_from` first."""
        rows: list[Fee] = self._configuration.get(
            ("fees", municipality_code),
            lambda session: [
                detached_copy(row) for row in session.scalars(_FEES, {"municipality_code": municipality_code})
            ],
        )
        return [
            row
            for row in rows
            if row.kind == kind and row.valid_from <= day and (row.valid_to is None or row.valid_to >= day)
        ]

    def closure_on(self, municipality_code: str, day: date) -> Closure | None:
        """A maintenance day of this municipality or of the whole service on `day`."""

        def load(session: Session) -> Closure | None:
            row = session.scalars(_CLOSURE_ON, {"day": day, "municipality_code": municipality_code}).first()
            return None if row is None else detached_copy(row)

        return self._configuration.get(("closure", municipality_code, day), load)

    def seal_registrations(self, resident_id: str) -> Sequence[SealRegistration]:
        """A resident's seal registrations, newest first."""
        return self._once(
            ("seals", resident_id),
            lambda: self.session.scalars(_SEAL_REGISTRATIONS, {"resident_id": resident_id}).all(),
        )

    def tax_record(self, resident_id: str, fiscal_year: int) -> TaxRecord | None:
        return self.session.scalars(_TAX_RECORD, {"resident_id": resident_id, "fiscal_year": fiscal_year}).first()

    def koseki_entries(self, resident_id: str, municipality_code: str) -> Sequence[KosekiMember]:
        """Every entry of the resident in a 戸籍 kept by the municipality (current or not)."""
        return self._once(
            ("koseki_entries", resident_id, municipality_code),
            lambda: self.session.scalars(
                _KOSEKI_ENTRIES, {"resident_id": resident_id, "municipality_code": municipality_code}
            ).all(),
        )

    def koseki_members(self, koseki_id: str) -> Sequence[KosekiMember]:
        return self._once(
            ("koseki_members", koseki_id), lambda: self.session.scalars(_KOSEKI_MEMBERS, {"koseki_id": koseki_id}).all()
        )

    def honseki_registrations(self, resident_id: str) -> Sequence[HonsekiRegistration]:
        return self._once(
            ("honseki", resident_id),
            lambda: self.session.scalars(_HONSEKI_REGISTRATIONS, {"resident_id": resident_id}).all(),
        )

    def honseki_registration(self, resident_id: str, municipality_code: str) -> HonsekiRegistration | None:
        return next(
            (r for r in self.honseki_registrations(resident_id) if r.municipality_code == municipality_code), None
        )
