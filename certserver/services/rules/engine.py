"""`menu_for` and `prepare_order` (certserver.services.ordering) built from the rules.

One code path for every municipality: what differs between them is data (settings, fees,
closures, the stop switch), never code (service.md §7, Munakata).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from certserver.db.models.registry import (
    CertificateSetting,
    Municipality,
    Resident,
    SealRegistration,
    TaxRecord,
)
from certserver.db.repositories.registry import RegistryRepository
from certserver.documents.content import Body, CertificateContent, CertificateKind
from certserver.refusals import MESSAGES
from certserver.services.rules import content_builder as cb
from certserver.services.rules.calendar import (
    is_weekday,
    is_year_end_closure,
    latest_fiscal_year,
    to_jst,
)
from certserver.services.rules.eligibility import (
    HouseholdView,
    KosekiView,
    check_requester,
    household_view,
    koseki_view,
)
from certserver.services.rules.fees import fee_for
from certserver.services.rules.terms import (
    CertificateOffer,
    Menu,
    MunicipalityMenu,
    MunicipalityRole,
    OptionChoice,
    OrderRequest,
    PersonChoice,
    PreparedOrder,
    RuleViolation,
)
from certserver.services.rules.violations import violation

JUSHOCHI_KINDS = (
    CertificateKind.JUMINHYO,
    CertificateKind.KISAIJIKO,
    CertificateKind.INKAN,
    CertificateKind.SHOTOKU_KAZEI,
)
KOSEKI_KINDS = (CertificateKind.KOSEKI_ZENBU, CertificateKind.KOSEKI_KOJIN, CertificateKind.KOSEKI_FUHYO)


@dataclass(frozen=True)
class _Moment:
    now: datetime  # JST
    today: date


def _moment(now: datetime) -> _Moment:
    jst = to_jst(now)
    return _Moment(jst, jst.date())


def _requester(repo: RegistryRepository, resident_id: str, today: date) -> Resident:
    resident = repo.resident(resident_id)
    if resident is None:
        raise violation("resident_not_found")
    check_requester(resident, today)
    return resident


def _closure_reason(repo: RegistryRepository, municipality: Municipality, today: date) -> str | None:
    """Why the whole municipality is closed today, or None."""
    start = municipality.participation_start
    if not municipality.participating or (start is not None and start > today):
        return "municipality_not_participating"
    if municipality.stopped:
        return "municipality_stopped"
    if is_year_end_closure(today):
        return "year_end_closure"
    if repo.closure_on(municipality.code, today) is not None:
        return "maintenance_day"
    return None


def _hours_reason(setting: CertificateSetting, moment: _Moment) -> str | None:
    if setting.weekdays_only and not is_weekday(moment.today):
        return "outside_hours"
    if not setting.opens_at <= moment.now.time().replace(tzinfo=None) < setting.closes_at:
        return "outside_hours"
    return None


def _honseki_reason(repo: RegistryRepository, requester: Resident, code: str, today: date) -> str | None:
    registration = repo.honseki_registration(requester.id, code)
    if registration is None:
        return "honseki_not_registered"
    if registration.effective_from > today:
        return "honseki_registration_pending"
    return None


def _kinds_for(
    repo: RegistryRepository, requester: Resident, code: str, role: MunicipalityRole
) -> tuple[CertificateKind, ...]:
    if role is MunicipalityRole.HONSEKICHI:
        return KOSEKI_KINDS
    # 戸籍 certificates from the 住所地 too when it also keeps the person's 戸籍.
    if repo.koseki_entries(requester.id, code):
        return JUSHOCHI_KINDS + KOSEKI_KINDS
    return JUSHOCHI_KINDS


# -- per-kind rules ------------------------------------------------------------------------


def _active_seal(repo: RegistryRepository, requester: Resident) -> SealRegistration:
    """The active seal registration. Raises seal_cancelled / seal_not_registered."""
    seals = repo.seal_registrations(requester.id)
    for seal in seals:
        if seal.status == "active":
            return seal
    raise violation("seal_cancelled" if seals else "seal_not_registered")


def _tax_record(repo: RegistryRepository, requester: Resident, fiscal_year: int | None, today: date) -> TaxRecord:
    """The declared record of the latest fiscal year. Raises tax_year_not_offered /
    tax_no_declaration."""
    latest = latest_fiscal_year(today)
    if fiscal_year is not None and fiscal_year != latest:
        raise violation("tax_year_not_offered")
    record = repo.tax_record(requester.id, latest)
    if record is None or not record.declared:
        raise violation("tax_no_declaration")
    return record


def _koseki(repo: RegistryRepository, requester: Resident, code: str) -> KosekiView:
    view = koseki_view(repo, requester, code)
    if view.entry.has_gaiji:
        raise violation("gaiji_in_record")
    return view


def _juminhyo_options(municipality: Municipality, household: HouseholdView) -> tuple[str, ...]:
    codes = [cb.OPTION_SETAINUSHI]
    if any(not p.is_foreign for p in household.eligible):
        codes.append(cb.OPTION_HONSEKI)
    if municipality.allows_my_number_on_juminhyo:
        codes.append(cb.OPTION_MY_NUMBER)
    if any(p.is_foreign for p in household.eligible):
        codes.append(cb.OPTION_FOREIGN_ITEMS)
    return tuple(codes)


def _option_choices(codes: Sequence[str]) -> tuple[OptionChoice, ...]:
    return tuple(OptionChoice(code, *cb.OPTION_LABELS[code]) for code in codes)


# -- the menu ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Choices:
    """What the requester may choose on one certificate of the menu."""

    persons: tuple[PersonChoice, ...] = ()
    options: tuple[OptionChoice, ...] = ()
    whole_household_allowed: bool = False
    refusal: str | None = None  # a rule that makes it unavailable though the choices stand


def _person_choice(person_id: str, name: str, zokugara: str, requester_id: str) -> PersonChoice:
    is_requester = person_id == requester_id
    return PersonChoice(person_id, name, "本人" if is_requester else zokugara, is_requester)


def _setai_choices(
    repo: RegistryRepository, requester: Resident, municipality: Municipality, kind: CertificateKind
) -> _Choices:
    """住民票 / 記載事項証明書: the members of the 世帯 (household) who may be printed, and the
    住民票's optional items. Raises the household's refusal (e.g. under_15)."""
    household = household_view(repo, requester)
    persons = tuple(_person_choice(p.id, p.name, p.zokugara, requester.id) for p in household.eligible)
    options = _option_choices(_juminhyo_options(municipality, household)) if kind is CertificateKind.JUMINHYO else ()
    return _Choices(persons, options, household.whole_household_allowed)


def _koseki_choices(
    repo: RegistryRepository, requester: Resident, municipality: Municipality, kind: CertificateKind
) -> _Choices:
    """戸籍 certificates: the members present who may be printed. Raises koseki_not_found /
    gaiji_in_record when the 戸籍 cannot be printed at all."""
    view = _koseki(repo, requester, municipality.code)
    if kind is CertificateKind.KOSEKI_ZENBU:
        # 全部事項 is the whole 戸籍: nobody to choose, and a gaiji anywhere in it stops it.
        gaiji = any(m.has_gaiji for m in view.members)
        return _Choices(whole_household_allowed=True, refusal="gaiji_in_record" if gaiji else None)
    persons = tuple(_person_choice(m.id, m.name, m.zokugara, view.entry.id) for m in view.present if not m.has_gaiji)
    whole = kind is not CertificateKind.KOSEKI_KOJIN and all(not m.has_gaiji for m in view.present)
    return _Choices(persons, whole_household_allowed=whole)


def _choices_for(
    repo: RegistryRepository, requester: Resident, municipality: Municipality, kind: CertificateKind, today: date
) -> _Choices:
    """What the requester may choose for `kind`. Raises the RuleViolation that makes the
    certificate unavailable to them (no seal registered, no tax declaration ...)."""
    if kind in (CertificateKind.JUMINHYO, CertificateKind.KISAIJIKO):
        return _setai_choices(repo, requester, municipality, kind)
    if kind is CertificateKind.INKAN:
        _active_seal(repo, requester)
        return _Choices()
    if kind is CertificateKind.SHOTOKU_KAZEI:
        _tax_record(repo, requester, None, today)
        return _Choices()
    return _koseki_choices(repo, requester, municipality, kind)


def _fee_or_refusal(
    repo: RegistryRepository, municipality: Municipality, kind: CertificateKind, today: date
) -> tuple[int, str | None]:
    """The fee per copy, or 0 and the code of the rule that leaves it without a fee."""
    try:
        return fee_for(repo, municipality.code, kind.value, today), None
    except RuleViolation as exc:
        return 0, exc.code


def _offer(
    repo: RegistryRepository,
    requester: Resident,
    municipality: Municipality,
    kind: CertificateKind,
    setting: CertificateSetting,
    closed: str | None,
    moment: _Moment,
) -> CertificateOffer:
    """One certificate on the menu; an unavailable one says the first rule that stops it."""
    fee, fee_refusal = _fee_or_refusal(repo, municipality, kind, moment.today)
    try:
        choices = _choices_for(repo, requester, municipality, kind, moment.today)
    except RuleViolation as exc:
        choices = _Choices(refusal=exc.code)
    reasons = (closed, _hours_reason(setting, moment), fee_refusal, choices.refusal)
    reason = next((r for r in reasons if r), None)
    return CertificateOffer(
        kind=kind,
        fee_yen=fee,
        max_copies=setting.max_copies,
        persons=choices.persons,
        options=choices.options,
        whole_household_allowed=choices.whole_household_allowed,
        available=reason is None,
        unavailable_reason=reason,
        fiscal_year=latest_fiscal_year(moment.today) if kind is CertificateKind.SHOTOKU_KAZEI else None,
        unavailable_message_ja=MESSAGES[reason][0] if reason else None,
        unavailable_message_en=MESSAGES[reason][1] if reason else None,
    )


# Closures after which the municipality is listed without certificates: the requester has
# no business there yet (it does not take part, or their 本籍 is not registered with it).
_NOTHING_TO_OFFER = frozenset(
    {"municipality_not_participating", "honseki_not_registered", "honseki_registration_pending"}
)


def _menu_closure(
    repo: RegistryRepository, requester: Resident, municipality: Municipality, role: MunicipalityRole, today: date
) -> str | None:
    """Why the municipality is closed to this requester today, or None; as 本籍地 (honsekichi),
    a missing or pending 本籍 registration comes first."""
    closed = _closure_reason(repo, municipality, today)
    if role is MunicipalityRole.HONSEKICHI:
        return _honseki_reason(repo, requester, municipality.code, today) or closed
    return closed


def _offers(
    repo: RegistryRepository,
    requester: Resident,
    municipality: Municipality,
    role: MunicipalityRole,
    closed: str | None,
    moment: _Moment,
) -> tuple[CertificateOffer, ...]:
    """The certificates the municipality offers at kiosks, each available or saying why not."""
    settings = repo.certificate_settings(municipality.code)
    return tuple(
        _offer(repo, requester, municipality, kind, settings[kind.value], closed, moment)
        for kind in _kinds_for(repo, requester, municipality.code, role)
        if kind.value in settings and settings[kind.value].offered
    )


def _municipality_menu(
    repo: RegistryRepository,
    requester: Resident,
    municipality: Municipality,
    role: MunicipalityRole,
    moment: _Moment,
) -> MunicipalityMenu:
    closed = _menu_closure(repo, requester, municipality, role, moment.today)
    offers: tuple[CertificateOffer, ...] = ()
    if closed not in _NOTHING_TO_OFFER:
        offers = _offers(repo, requester, municipality, role, closed, moment)
    if closed is None and offers and all(o.unavailable_reason == "outside_hours" for o in offers):
        closed = "outside_hours"
    return MunicipalityMenu(
        code=municipality.code,
        name=municipality.name,
        role=role,
        open=closed is None,
        closed_reason=closed,
        offers=offers,
        name_en=municipality.name_en,
        closed_message_ja=MESSAGES[closed][0] if closed else None,
        closed_message_en=MESSAGES[closed][1] if closed else None,
    )


def build_menu(repo: RegistryRepository, resident_id: str, now: datetime) -> Menu:
    """See certserver.services.ordering.menu_for."""
    moment = _moment(now)
    requester = _requester(repo, resident_id, moment.today)
    home = repo.municipality(requester.municipality_code)
    assert home is not None  # a foreign key guarantees it
    menus = [_municipality_menu(repo, requester, home, MunicipalityRole.JUSHOCHI, moment)]
    for registration in repo.honseki_registrations(requester.id):
        if registration.municipality_code == requester.municipality_code:
            continue
        municipality = repo.municipality(registration.municipality_code)
        assert municipality is not None
        menus.append(_municipality_menu(repo, requester, municipality, MunicipalityRole.HONSEKICHI, moment))
    return Menu(resident_id=requester.id, municipalities=tuple(menus))


# -- an order ------------------------------------------------------------------------------


def _check_municipality(
    repo: RegistryRepository, requester: Resident, order: OrderRequest, today: date
) -> Municipality:
    municipality = repo.municipality(order.municipality_code)
    if municipality is None:
        raise violation("municipality_not_available")
    if order.role is MunicipalityRole.JUSHOCHI:
        if municipality.code != requester.municipality_code:
            raise violation("municipality_not_available")
    else:
        reason = _honseki_reason(repo, requester, municipality.code, today)
        if reason is not None:
            raise violation(reason)
    closed = _closure_reason(repo, municipality, today)
    if closed is not None:
        raise violation(closed)
    return municipality


def _setting_for(
    repo: RegistryRepository, requester: Resident, municipality: Municipality, order: OrderRequest
) -> CertificateSetting:
    setting = repo.certificate_settings(municipality.code).get(order.kind.value)
    if setting is None or not setting.offered:
        raise violation("certificate_not_offered")
    if order.kind not in _kinds_for(repo, requester, municipality.code, order.role):
        raise violation("koseki_not_found" if order.kind in KOSEKI_KINDS else "certificate_not_offered")
    return setting


def _check_copies(copies: int, setting: CertificateSetting) -> None:
    if copies < 1:
        raise violation("invalid_copies")
    if copies > setting.max_copies:
        raise violation("too_many_copies")


def _holder_only(requester_id: str, order: OrderRequest) -> None:
    if order.whole_household or any(pid != requester_id for pid in order.person_ids):
        raise violation("person_not_allowed")
    if order.options:
        raise violation("option_not_allowed")


def _chosen_residents(household: HouseholdView, requester: Resident, order: OrderRequest) -> tuple[Resident, ...]:
    """The persons of a 住民票 order in household order. Raises person_not_allowed (or the
    member's own code, e.g. gaiji_in_record) for anyone who may not be printed."""
    if order.whole_household:
        if not household.whole_household_allowed:
            missing = next(m for m in household.current if m not in household.eligible)
            raise violation(household.refusal_for(missing.id))
        if order.person_ids and set(order.person_ids) != {m.id for m in household.current}:
            raise violation("person_not_allowed")
        return household.eligible
    wanted = order.person_ids or (requester.id,)
    allowed = household.eligible_by_id()
    for person_id in wanted:
        if person_id not in allowed:
            raise violation(household.refusal_for(person_id))
    return tuple(m for m in household.eligible if m.id in set(wanted))


def _juminhyo(repo: RegistryRepository, requester: Resident, municipality: Municipality, order: OrderRequest) -> Body:
    household = household_view(repo, requester)
    persons = _chosen_residents(household, requester, order)
    address = requester.household.address
    if order.kind is CertificateKind.KISAIJIKO:
        if order.options:
            raise violation("option_not_allowed")  # a fixed format
        return cb.kisaijiko_body(address, persons, household.setainushi, order.whole_household)
    allowed = set(_juminhyo_options(municipality, household))
    for option in order.options:
        if option == cb.OPTION_MY_NUMBER and not municipality.allows_my_number_on_juminhyo:
            raise violation("my_number_not_allowed")
        if option not in allowed:
            raise violation("option_not_allowed")
    # An item that applies to none of the chosen persons was asked by mistake.
    if cb.OPTION_HONSEKI in order.options and all(p.is_foreign for p in persons):
        raise violation("option_not_allowed")
    if cb.OPTION_FOREIGN_ITEMS in order.options and not any(p.is_foreign for p in persons):
        raise violation("option_not_allowed")
    return cb.juminhyo_body(address, persons, household.setainushi, frozenset(order.options), order.whole_household)


def _koseki_order(
    repo: RegistryRepository, requester: Resident, municipality: Municipality, order: OrderRequest
) -> Body:
    if order.options:
        raise violation("option_not_allowed")
    view = _koseki(repo, requester, municipality.code)
    if order.kind is CertificateKind.KOSEKI_ZENBU:
        # 全部事項 is the whole 戸籍 by definition, 除籍 lines included.
        if order.person_ids and set(order.person_ids) != {m.id for m in view.members}:
            raise violation("person_not_allowed")
        members = view.members
    elif order.whole_household and order.kind is CertificateKind.KOSEKI_FUHYO:
        members = view.present
    else:
        if order.whole_household:
            raise violation("person_not_allowed")
        wanted = set(order.person_ids or (view.entry.id,))
        present = {m.id for m in view.present}
        if not wanted <= present:
            raise violation("person_not_allowed")
        members = tuple(m for m in view.present if m.id in wanted)
    if any(m.has_gaiji for m in members):
        raise violation("gaiji_in_record")
    if order.kind is CertificateKind.KOSEKI_FUHYO:
        return cb.fuhyo_body(view.koseki, members)
    return cb.koseki_body(view.koseki, members)


def _body(
    repo: RegistryRepository, requester: Resident, municipality: Municipality, order: OrderRequest, today: date
) -> Body:
    kind = order.kind
    if kind in (CertificateKind.JUMINHYO, CertificateKind.KISAIJIKO):
        return _juminhyo(repo, requester, municipality, order)
    if kind is CertificateKind.INKAN:
        _holder_only(requester.id, order)
        return cb.inkan_body(requester, _active_seal(repo, requester))
    if kind is CertificateKind.SHOTOKU_KAZEI:
        _holder_only(requester.id, order)
        return cb.tax_body(requester, _tax_record(repo, requester, order.fiscal_year, today))
    return _koseki_order(repo, requester, municipality, order)


def build_order(repo: RegistryRepository, requester_id: str, order: OrderRequest, now: datetime) -> PreparedOrder:
    """See certserver.services.ordering.prepare_order."""
    moment = _moment(now)
    requester = _requester(repo, requester_id, moment.today)
    municipality = _check_municipality(repo, requester, order, moment.today)
    setting = _setting_for(repo, requester, municipality, order)
    hours = _hours_reason(setting, moment)
    if hours is not None:
        raise violation(hours)
    _check_copies(order.copies, setting)
    fee = fee_for(repo, municipality.code, order.kind.value, moment.today)
    body = _body(repo, requester, municipality, order, moment.today)
    content = CertificateContent(
        kind=order.kind,
        certificate_number="",
        issued_on=moment.today,
        issuer=cb.issuer_of(municipality),
        body=body,
    )
    return PreparedOrder(content=content, copies=order.copies, fee_per_copy_yen=fee)
