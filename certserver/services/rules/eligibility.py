"""Who may use the service, and whom they may name on a certificate (service.md §2)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from certserver.db.models.registry import (
    Koseki,
    KosekiMember,
    KosekiStatus,
    Resident,
    ResidentStatus,
)
from certserver.db.repositories.registry import RegistryRepository
from certserver.services.rules.violations import violation
from konbini_common.japan import age_on

MINIMUM_AGE = 15  # under-15s cannot use the kiosk service (service.md §1)
SETAINUSHI = "世帯主"

# The requester's own record: the code says why, so the kiosk can send them to the office.
_REQUESTER_STATUS_CODES = {
    ResidentStatus.MOVED_OUT.value: "resident_moved_out",
    ResidentStatus.DECEASED.value: "resident_deceased",
    ResidentStatus.DV_SUPPORT.value: "dv_support_measure",
    ResidentStatus.CHANGE_PENDING.value: "change_pending",
}

# Another member's record: a support measure is not revealed to the rest of the household.
_MEMBER_STATUS_CODES = {
    ResidentStatus.MOVED_OUT.value: "person_not_allowed",
    ResidentStatus.DECEASED.value: "person_not_allowed",
    ResidentStatus.DV_SUPPORT.value: "person_not_allowed",
    ResidentStatus.CHANGE_PENDING.value: "change_pending",
}

_FORMER_MEMBER = (ResidentStatus.MOVED_OUT.value, ResidentStatus.DECEASED.value)


def check_requester(resident: Resident, today: date) -> None:
    """Raise RuleViolation when the card holder may not use the service at all:
    resident_moved_out, resident_deceased, dv_support_measure, change_pending,
    gaiji_in_record, same_day_move_in, under_15."""
    code = _REQUESTER_STATUS_CODES.get(resident.status)
    if code is not None:
        raise violation(code)
    if resident.has_gaiji:
        raise violation("gaiji_in_record")
    # The service works from the day after a person becomes a resident.
    if resident.became_resident_on >= today:
        raise violation("same_day_move_in")
    if age_on(resident.birth_date, today) < MINIMUM_AGE:
        raise violation("under_15")


def member_refusal(member: Resident) -> str | None:
    """Why a household member cannot appear on a 住民票 (a code), or None."""
    code = _MEMBER_STATUS_CODES.get(member.status)
    if code is not None:
        return code
    if member.has_gaiji:
        return "gaiji_in_record"
    return None


@dataclass(frozen=True)
class HouseholdView:
    """The requester's current household as the 住民票 rules see it."""

    current: tuple[Resident, ...]  # members in the current record, 世帯主 first
    eligible: tuple[Resident, ...]  # those who may be printed
    setainushi: Resident | None

    @property
    def whole_household_allowed(self) -> bool:
        return len(self.current) == len(self.eligible)

    def eligible_by_id(self) -> dict[str, Resident]:
        return {member.id: member for member in self.eligible}

    def refusal_for(self, person_id: str) -> str:
        """The code to refuse naming `person_id` with (never reveals a support measure)."""
        for member in self.current:
            if member.id == person_id:
                return member_refusal(member) or "person_not_allowed"
        return "person_not_allowed"


def household_view(repo: RegistryRepository, requester: Resident) -> HouseholdView:
    members = repo.household_members(requester.household_id)
    current = [m for m in members if m.status not in _FORMER_MEMBER]
    current.sort(key=lambda m: (m.zokugara != SETAINUSHI, m.id))
    eligible = tuple(m for m in current if member_refusal(m) is None)
    head = next((m for m in current if m.zokugara == SETAINUSHI), None)
    return HouseholdView(tuple(current), eligible, head)


@dataclass(frozen=True)
class KosekiView:
    """The 戸籍 a requester belongs to at one municipality."""

    entry: KosekiMember  # the requester's own line
    members: tuple[KosekiMember, ...]  # every line, in order of entry (removed ones too)

    @property
    def koseki(self) -> Koseki:
        return self.entry.koseki

    @property
    def present(self) -> tuple[KosekiMember, ...]:
        """Members not 除籍: the ones a 個人事項証明書 or 附票 can be about."""
        return tuple(m for m in self.members if not m.removed)


def koseki_view(repo: RegistryRepository, requester: Resident, municipality_code: str) -> KosekiView:
    """The requester's current 戸籍 at the municipality.

    Raises RuleViolation: koseki_not_found (none there), koseki_not_current (only a 除籍 or
    改製原戸籍 is there, which kiosks do not issue)."""
    entries: Sequence[KosekiMember] = repo.koseki_entries(requester.id, municipality_code)
    current = [e for e in entries if not e.removed and e.koseki.status == KosekiStatus.CURRENT.value]
    if not current:
        raise violation("koseki_not_current" if entries else "koseki_not_found")
    entry = current[0]
    return KosekiView(entry, tuple(repo.koseki_members(entry.koseki_id)))
