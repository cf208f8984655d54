"""Registry queries the ordering rules need. Read-only: they run in the caller's session."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

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


class RegistryRepository:
    """The registry as seen by the rules, over one session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def resident(self, resident_id: str) -> Resident | None:
        return self.session.get(Resident, resident_id)

    def municipality(self, code: str) -> Municipality | None:
        return self.session.get(Municipality, code)

    def household_members(self, household_id: str) -> Sequence[Resident]:
        return self.session.scalars(
            select(Resident).where(Resident.household_id == household_id).order_by(Resident.id)
        ).all()

    def certificate_settings(self, municipality_code: str) -> dict[str, CertificateSetting]:
        rows = self.session.scalars(
            select(CertificateSetting).where(CertificateSetting.municipality_code == municipality_code)
        ).all()
        return {row.kind: row for row in rows}

    def fees_on(self, municipality_code: str, kind: str, day: date) -> Sequence[Fee]:
        """Fee rows in force on `day`, newest `valid_from` first."""
        return self.session.scalars(
            select(Fee)
            .where(
                Fee.municipality_code == municipality_code,
                Fee.kind == kind,
                Fee.valid_from <= day,
                or_(Fee.valid_to.is_(None), Fee.valid_to >= day),
            )
            .order_by(Fee.valid_from.desc(), Fee.id.desc())
        ).all()

    def closure_on(self, municipality_code: str, day: date) -> Closure | None:
        """A maintenance day of this municipality or of the whole service on `day`."""
        return self.session.scalars(
            select(Closure)
            .where(
                Closure.closed_on == day,
                or_(Closure.municipality_code.is_(None), Closure.municipality_code == municipality_code),
            )
            .order_by(Closure.id)
            .limit(1)
        ).first()

    def seal_registrations(self, resident_id: str) -> Sequence[SealRegistration]:
        """A resident's seal registrations, newest first."""
        return self.session.scalars(
            select(SealRegistration)
            .where(SealRegistration.resident_id == resident_id)
            .order_by(SealRegistration.registered_on.desc(), SealRegistration.id.desc())
        ).all()

    def tax_record(self, resident_id: str, fiscal_year: int) -> TaxRecord | None:
        return self.session.scalars(
            select(TaxRecord).where(TaxRecord.resident_id == resident_id, TaxRecord.fiscal_year == fiscal_year)
        ).first()

    def koseki_entries(self, resident_id: str, municipality_code: str) -> Sequence[KosekiMember]:
        """Every entry of the resident in a 戸籍 kept by the municipality (current or not)."""
        return self.session.scalars(
            select(KosekiMember)
            .join(Koseki, KosekiMember.koseki_id == Koseki.id)
            .where(KosekiMember.resident_id == resident_id, Koseki.municipality_code == municipality_code)
            .order_by(Koseki.compiled_on.desc(), KosekiMember.id)
        ).all()

    def koseki_members(self, koseki_id: str) -> Sequence[KosekiMember]:
        return self.session.scalars(
            select(KosekiMember).where(KosekiMember.koseki_id == koseki_id).order_by(KosekiMember.position)
        ).all()

    def honseki_registrations(self, resident_id: str) -> Sequence[HonsekiRegistration]:
        return self.session.scalars(
            select(HonsekiRegistration)
            .where(HonsekiRegistration.resident_id == resident_id)
            .order_by(HonsekiRegistration.municipality_code)
        ).all()

    def honseki_registration(self, resident_id: str, municipality_code: str) -> HonsekiRegistration | None:
        return self.session.scalars(
            select(HonsekiRegistration).where(
                HonsekiRegistration.resident_id == resident_id,
                HonsekiRegistration.municipality_code == municipality_code,
            )
        ).first()
