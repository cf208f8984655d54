"""Registry queries the ordering rules need. Read-only: they run in the caller's session."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import or_, select
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

T = TypeVar("T")


class RegistryRepository:
    """The registry as seen by the rules, over one session.

    One instance serves one request: answers are remembered for its lifetime, because a
    menu asks the same questions once per certificate kind (the household for 住民票 and
    記載事項証明書, the 戸籍 for three kinds, the fee table for each). Nothing outlives the
    instance, so a stop switch or a new fee is seen by the next request.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self._memo: dict[Hashable, Any] = {}

    def _once(self, key: Hashable, load: Callable[[], T]) -> T:
        if key not in self._memo:
            self._memo[key] = load()
        return self._memo[key]  # type: ignore[no-any-return]

    def resident(self, resident_id: str) -> Resident | None:
        return self.session.get(Resident, resident_id)

    def municipality(self, code: str) -> Municipality | None:
        return self.session.get(Municipality, code)

    def household_members(self, household_id: str) -> Sequence[Resident]:
        return self._once(("household", household_id), lambda: self.session.scalars(
            select(Resident).where(Resident.household_id == household_id).order_by(Resident.id)
        ).all())

    def certificate_settings(self, municipality_code: str) -> dict[str, CertificateSetting]:
        def load() -> dict[str, CertificateSetting]:
            rows = self.session.scalars(
                select(CertificateSetting).where(CertificateSetting.municipality_code == municipality_code)
            ).all()
            return {row.kind: row for row in rows}

        return self._once(("settings", municipality_code), load)

    def fees_on(self, municipality_code: str, kind: str, day: date) -> Sequence[Fee]:
        """Fee rows in force on `day`, newest `valid_from` first."""
        rows = self._once(("fees", municipality_code), lambda: self.session.scalars(
            select(Fee).where(Fee.municipality_code == municipality_code)
            .order_by(Fee.valid_from.desc(), Fee.id.desc())
        ).all())
        return [row for row in rows if row.kind == kind and row.valid_from <= day
                and (row.valid_to is None or row.valid_to >= day)]

    def closure_on(self, municipality_code: str, day: date) -> Closure | None:
        """A maintenance day of this municipality or of the whole service on `day`."""
        return self._once(("closure", municipality_code, day), lambda: self.session.scalars(
            select(Closure)
            .where(
                Closure.closed_on == day,
                or_(Closure.municipality_code.is_(None), Closure.municipality_code == municipality_code),
            )
            .order_by(Closure.id)
            .limit(1)
        ).first())

    def seal_registrations(self, resident_id: str) -> Sequence[SealRegistration]:
        """A resident's seal registrations, newest first."""
        return self._once(("seals", resident_id), lambda: self.session.scalars(
            select(SealRegistration)
            .where(SealRegistration.resident_id == resident_id)
            .order_by(SealRegistration.registered_on.desc(), SealRegistration.id.desc())
        ).all())

    def tax_record(self, resident_id: str, fiscal_year: int) -> TaxRecord | None:
        return self.session.scalars(
            select(TaxRecord).where(TaxRecord.resident_id == resident_id, TaxRecord.fiscal_year == fiscal_year)
        ).first()

    def koseki_entries(self, resident_id: str, municipality_code: str) -> Sequence[KosekiMember]:
        """Every entry of the resident in a 戸籍 kept by the municipality (current or not)."""
        return self._once(("koseki_entries", resident_id, municipality_code), lambda: self.session.scalars(
            select(KosekiMember)
            .join(Koseki, KosekiMember.koseki_id == Koseki.id)
            .where(KosekiMember.resident_id == resident_id, Koseki.municipality_code == municipality_code)
            .order_by(Koseki.compiled_on.desc(), KosekiMember.id)
        ).all())

    def koseki_members(self, koseki_id: str) -> Sequence[KosekiMember]:
        return self._once(("koseki_members", koseki_id), lambda: self.session.scalars(
            select(KosekiMember).where(KosekiMember.koseki_id == koseki_id).order_by(KosekiMember.position)
        ).all())

    def honseki_registrations(self, resident_id: str) -> Sequence[HonsekiRegistration]:
        return self._once(("honseki", resident_id), lambda: self.session.scalars(
            select(HonsekiRegistration)
            .where(HonsekiRegistration.resident_id == resident_id)
            .order_by(HonsekiRegistration.municipality_code)
        ).all())

    def honseki_registration(self, resident_id: str, municipality_code: str) -> HonsekiRegistration | None:
        return next((r for r in self.honseki_registrations(resident_id) if r.municipality_code == municipality_code),
                    None)
