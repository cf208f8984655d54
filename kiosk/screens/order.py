"""Choosing: municipality (住所地/本籍地), certificate, persons and items, copies, confirm."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.widgets import Button, Checkbox, Static

from kiosk import flow as f
from kiosk.i18n import has, localised, text
from kiosk.models import Offer
from kiosk.screens.base import StepScreen


def kind_title(language: str, kind: str) -> str:
    key = f"kind.{kind}"
    return text(language, key) if has(language, key) else kind


# Reasons a store can do nothing about: the person must go to the city office ("not at a
# store"). Any other reason (hours, a closure, a registration or change still being
# processed, a reason this kiosk does not know) is said as "not now".
NOT_AT_A_STORE = frozenset(
    {
        "not_available_at_kiosk",
        "under_15",
        "resident_not_found",
        "resident_moved_out",
        "resident_deceased",
        "gaiji_in_record",
        "seal_not_registered",
        "seal_cancelled",
        "tax_no_declaration",
        "tax_year_not_offered",
        "person_not_allowed",
        "municipality_not_participating",
        "municipality_not_available",
        "honseki_not_registered",
        "koseki_not_found",
        "koseki_not_current",
        "certificate_not_offered",
        "no_fee_defined",
    }
)


def not_now(reason: str | None) -> bool:
    """Whether an unavailable choice is unavailable only for now."""
    return reason not in NOT_AT_A_STORE


def whole_label_key(kind: str) -> str:
    """The words of the "everyone" box: a 住民票's 世帯全員 (the household) is not the
    people of a 戸籍 or its 附票 (a family register is not a household)."""
    if kind == "koseki_fuhyo":
        return "persons.whole_fuhyo"
    return "persons.whole_koseki" if kind.startswith("koseki") else "persons.whole_household"


class MunicipalityScreen(StepScreen):
    step = f.Step.MUNICIPALITY
    AUTO_FOCUS = ".choice"  # the main button: Enter works without Tab

    def compose_body(self) -> ComposeResult:
        assert self.flow.menu is not None
        for index, municipality in enumerate(self.flow.menu.municipalities):
            name = localised(self.language, "place", municipality.name)
            label = self.t(f"municipality.{municipality.role.value}", name=name)
            if not municipality.open:
                key = "municipality.closed" if not_now(municipality.closed_reason) else "municipality.not_at_kiosk"
                label = self.t(key, name=label)
            yield Button(
                label, id=f"municipality-{index}", classes="choice", variant="primary", disabled=not municipality.open
            )
            if not municipality.open:
                yield from self.why_not(
                    municipality.closed_reason,
                    f"municipality-{index}-why",
                    (municipality.closed_message_ja, municipality.closed_message_en),
                )

    @on(Button.Pressed, ".choice")
    def _chosen(self, event: Button.Pressed) -> None:
        assert self.flow.menu is not None
        index = int((event.button.id or "").removeprefix("municipality-"))
        municipality = self.flow.menu.municipalities[index]
        self.act(f.MunicipalityChosen(municipality.code, municipality.role.value))


class CertificateScreen(StepScreen):
    step = f.Step.CERTIFICATE
    AUTO_FOCUS = ".choice"  # the main button: Enter works without Tab

    def _offers(self) -> tuple[Offer, ...]:
        municipality = self.flow.selection.municipality
        return () if municipality is None else municipality.offers

    def compose_body(self) -> ComposeResult:
        for offer in self._offers():
            title = kind_title(self.language, offer.kind)
            label = (
                self.t("certificate.fee", title=title, fee=offer.fee_yen)
                if offer.available
                else self.t(
                    "certificate.unavailable" if not_now(offer.unavailable_reason) else "certificate.not_at_kiosk",
                    title=title,
                )
            )
            yield Button(
                label, id=f"kind-{offer.kind}", classes="choice", variant="primary", disabled=not offer.available
            )
            if not offer.available:
                yield from self.why_not(
                    offer.unavailable_reason,
                    f"kind-{offer.kind}-why",
                    (offer.unavailable_message_ja, offer.unavailable_message_en),
                )

    def compose_actions(self) -> ComposeResult:
        yield Button(self.t("common.back"), id="back")

    @on(Button.Pressed, ".choice")
    def _chosen(self, event: Button.Pressed) -> None:
        self.act(f.CertificateChosen((event.button.id or "").removeprefix("kind-")))


class PersonsScreen(StepScreen):
    step = f.Step.PERSONS
    AUTO_FOCUS = "#next"  # the main button: Enter works without Tab

    def _offer(self) -> Offer:
        assert self.flow.selection.offer is not None
        return self.flow.selection.offer

    def compose_body(self) -> ComposeResult:
        offer = self._offer()
        selection = self.flow.selection
        if offer.whole_household_allowed:
            yield Checkbox(self.t(whole_label_key(offer.kind)), selection.whole_household, id="whole-household")
        for index, person in enumerate(offer.persons):
            yield Checkbox(
                self.t(
                    "persons.person",
                    name=person.name,
                    relationship=localised(self.language, "relationship", person.relationship),
                ),
                person.person_id in selection.person_ids,
                id=f"person-{index}",
                classes="person",
            )
        if offer.options:
            yield Static(self.t("persons.options"), classes="subtitle")
        for index, option in enumerate(offer.options):
            label = option.label_ja if self.language == "ja" else option.label_en
            yield Checkbox(label, option.code in selection.options, id=f"option-{index}", classes="option")

    def compose_actions(self) -> ComposeResult:
        yield Button(self.t("common.back"), id="back")
        yield Button(self.t("common.next"), id="next", variant="primary")

    @on(Checkbox.Changed)
    def _changed(self, event: Checkbox.Changed) -> None:
        offer = self._offer()
        box_id = event.checkbox.id or ""
        if box_id == "whole-household":
            self.act(f.Pressed(f.Action.WHOLE_HOUSEHOLD))
        elif box_id.startswith("person-"):
            self.act(f.PersonToggled(offer.persons[int(box_id.removeprefix("person-"))].person_id))
        elif box_id.startswith("option-"):
            self.act(f.OptionToggled(offer.options[int(box_id.removeprefix("option-"))].code))

    def update_view(self) -> None:
        # The flow may untick one box because of another (a person unticks 世帯全員).
        offer = self._offer()
        selection = self.flow.selection
        wanted = {f"person-{i}": p.person_id in selection.person_ids for i, p in enumerate(offer.persons)}
        wanted |= {f"option-{i}": o.code in selection.options for i, o in enumerate(offer.options)}
        if offer.whole_household_allowed:
            wanted["whole-household"] = selection.whole_household
        for box in self.query(Checkbox):
            value = wanted.get(box.id or "")
            if value is not None and box.value != value:
                with box.prevent(Checkbox.Changed):
                    box.value = value


class CopiesScreen(StepScreen):
    step = f.Step.COPIES
    AUTO_FOCUS = "#next"  # the main button: Enter works without Tab

    def compose_body(self) -> ComposeResult:
        yield Static(self.t("copies.count", copies=self.flow.selection.copies), id="copies", classes="big")
        if self.flow.selection.offer is not None:
            yield Static(
                self.t("copies.limit", max=self.flow.selection.offer.max_copies), id="copies-limit", classes="hint"
            )
        yield Button(self.t("copies.more"), id="more", classes="choice")
        yield Button(self.t("copies.fewer"), id="fewer", classes="choice")

    def compose_actions(self) -> ComposeResult:
        yield Button(self.t("common.back"), id="back")
        yield Button(self.t("common.next"), id="next", variant="primary")

    @on(Button.Pressed, "#more, #fewer")
    def _change(self, event: Button.Pressed) -> None:
        delta = 1 if event.button.id == "more" else -1
        self.act(f.CopiesChosen(self.flow.selection.copies + delta))

    def update_view(self) -> None:
        self.query_one("#copies", Static).update(self.t("copies.count", copies=self.flow.selection.copies))


class ConfirmScreen(StepScreen):
    step = f.Step.CONFIRM
    AUTO_FOCUS = "#confirm"  # the main button: Enter works without Tab

    def compose_body(self) -> ComposeResult:
        selection = self.flow.selection
        assert selection.offer is not None and selection.municipality is not None
        offer = selection.offer
        yield Static(self.t("confirm.certificate", title=kind_title(self.language, offer.kind)))
        yield Static(
            self.t("confirm.municipality", name=localised(self.language, "place", selection.municipality.name))
        )
        if selection.whole_household:
            yield Static(self.t("confirm.whole_household"))
        elif offer.persons:
            names = [p.name for p in offer.persons if p.person_id in selection.person_ids]
            yield Static(self.t("confirm.persons", persons=self.t("confirm.separator").join(names)))
        if selection.options:
            labels = [
                o.label_ja if self.language == "ja" else o.label_en
                for o in offer.options
                if o.code in selection.options
            ]
            yield Static(self.t("confirm.options", options=self.t("confirm.separator").join(labels)))
        yield Static(self.t("confirm.copies", copies=selection.copies))
        yield Static(self.t("confirm.fee", fee=self.flow.fee_yen), id="fee", classes="big")

    def compose_actions(self) -> ComposeResult:
        yield Button(self.t("common.back"), id="back")
        yield Button(self.t("confirm.ok"), id="confirm", variant="success")

    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        self.act(f.Pressed(f.Action.CONFIRM))
