"""The headless kiosk for a test: the kiosk's own flow and effect runner (kiosk.driver), on a
harness card, against a running service, with a scripted person.

`visit(...)` runs a whole visit and returns a `Visit`; `begin`, `enter_pin`, `order`, `pay`,
`cancel` and `wait` run it step by step, for tests that act in between (pull the card during
the PIN, let a time-out fire, cancel after paying). When the kiosk asks for the card to be
taken, the harness takes it out of its reader, and puts it back at the next `begin`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from kiosk import flow as f
from kiosk.config import KioskSettings, build_devices
from kiosk.driver import Driver, ScriptError, VisitResult, VisitScript
from konbini_pytest.card import HarnessCard
from konbini_pytest.service import KioskCredential


@dataclass(frozen=True)
class Visit:
    """How a visit ended. `rule_code` is the service's rule or the failure's code (the
    screen the kiosk showed) when it did not issue; `steps` the screens it went through."""

    status: str  # "issued" | "error"
    rule_code: str | None
    documents: tuple[Path, ...]
    fee: int
    paid: int
    change: int
    transaction_id: str | None
    tries_left: int | None
    steps: tuple[str, ...]

    @property
    def issued(self) -> bool:
        return self.status == "issued"


class HarnessKiosk:
    """One kiosk: a card reader with the harness card, the service, cash, a printer folder."""

    def __init__(self, url: str, credential: KioskCredential, card: HarnessCard, out_dir: Path) -> None:
        """Raises cardreader.status.ReaderError (PC/SC unavailable)."""
        self.card = card
        self.out_dir = Path(out_dir)
        settings = KioskSettings(
            server_url=url,
            kiosk_id=credential.kiosk_id,
            kiosk_secret=SecretStr(credential.secret),
            printer_dir=self.out_dir / "printed",
            state_dir=self.out_dir / "state",
        )
        self._skipped = 0.0  # seconds `wait` moved the kiosk's own clock on
        self.flow = f.KioskFlow(clock=lambda: time.monotonic() + self._skipped)
        self.driver = Driver(self.flow, build_devices(settings, reader=card.reader()).runner)
        self.driver.on_take_card = card.remove
        self._script = VisitScript(pin=card.pin)

    @property
    def step(self) -> str:
        """The screen the kiosk shows now (kiosk.flow.Step value)."""
        return self.flow.step.value

    def _visit(self, result: VisitResult) -> Visit:
        return Visit(
            result.status,
            result.error_code,
            tuple(Path(p) for p in result.documents),
            result.fee,
            result.paid,
            result.change,
            result.transaction_id,
            result.tries_left,
            tuple(step.value for step in dict.fromkeys(self.driver.steps_seen)),
        )

    # -- a whole visit -------------------------------------------------------------------
    def visit(
        self,
        certificate: str = "juminhyo",
        *,
        persons: str = "self",
        copies: int = 1,
        pay: int | None = None,
        options: tuple[str, ...] = (),
        municipality: str = "jushochi",
        pin: str | None = None,
    ) -> Visit:
        """One visit from the start screen to taking the certificates. `pay` None inserts the
        exact fee; `persons` is "self", "all" or comma-separated person ids; `municipality`
        "jushochi" (住所地) or "honseki" (本籍地). Never raises for a refusal: the Visit says."""
        self.begin()
        ended = self.enter_pin(pin)
        if ended is not None:
            return ended
        ended = self.order(certificate, persons=persons, copies=copies, options=options, municipality=municipality)
        if ended is not None:
            return ended
        return self.pay(pay)

    # -- step by step --------------------------------------------------------------------
    def begin(self, language: str = "ja") -> None:
        """From the start screen to the PIN pad (placing the card again if it was taken)."""
        self.driver.steps_seen = []
        if not self.card.inserted:
            self.card.insert()
        self.driver.begin(language)

    def enter_pin(self, pin: str | None = None) -> Visit | None:
        """Enter the PIN (default: the card's); None when the visit goes on to the menu."""
        self._script = VisitScript(pin=self.card.pin if pin is None else pin)
        result = self.driver.authenticate(self._script, removal_timeout=10.0)
        return None if result is None else self._visit(result)

    def order(
        self,
        certificate: str = "juminhyo",
        *,
        persons: str = "self",
        copies: int = 1,
        options: tuple[str, ...] = (),
        municipality: str = "jushochi",
    ) -> Visit | None:
        """Choose and confirm; None when the kiosk then waits for the money."""
        self._script = VisitScript(
            pin="",
            certificate=certificate,
            municipality_role=municipality,
            persons=persons,
            options=options,
            copies=copies,
        )
        try:
            self.driver.order(self._script)
        except ScriptError as exc:
            self.driver.send(f.Pressed(f.Action.CANCEL))
            return self._visit(self.driver.finish(exc.code))
        if self.flow.step is not f.Step.PAYMENT:
            return self._visit(self.driver.finish())
        return None

    @property
    def fee(self) -> int:
        """The fee the kiosk asks for (on the payment screen)."""
        return self.flow.fee_yen

    def pay(self, yen: int | None = None) -> Visit:
        """Insert `yen` (None: the exact fee) and take what the kiosk gives."""
        script = VisitScript(pin="", pay_yen=yen)
        return self._visit(self.driver.pay(script))

    def cancel(self) -> Visit:
        """Press cancel where the visit stands (money inserted is given back); on a failure
        screen, acknowledge it. Returns how the visit ended."""
        if self.flow.step is f.Step.FAILED:
            return self._visit(self.driver.finish())
        self.driver.send(f.Pressed(f.Action.CANCEL))
        return self._visit(self.driver.finish("cancelled"))

    def wait(self, seconds: float) -> str:
        """Let `seconds` pass on the kiosk's own clock (time-outs fire); returns the step."""
        self._skipped += seconds
        self.driver.send(f.Tick())
        return self.step

    def close(self) -> None:
        self.driver.runner.client.close()
