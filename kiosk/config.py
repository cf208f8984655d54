"""Settings of the kiosk (environment prefix KIOSK_), built at the entry point and passed
down; and the assembly of one kiosk's devices from them."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from kiosk.card import CardReader, open_reader
from kiosk.client import ClientSettings, ServiceClient
from kiosk.flow import Timeouts
from kiosk.outcome_reports import OutcomeReports
from kiosk.payment import CashAcceptor
from kiosk.printer import DEFAULT_SHEETS, Printer
from kiosk.runner import EffectRunner


class CodeCheck(Enum):
    """What the operator panel's code check answered."""

    ACCEPTED = "accepted"
    WRONG = "wrong"
    LOCKED = "locked"  # too many wrong entries: refused, right or wrong, for a while


class OperatorCode(SecretStr):
    """The operator panel's code (係員コード): a secret that is never shown, and that locks
    for `LOCK_SECONDS` after `MAX_WRONG` wrong entries in a row, so a passer-by at the
    kiosk cannot try codes one after another. The count lives as long as the settings,
    i.e. the kiosk process: closing and reopening the panel does not reset it."""

    MAX_WRONG = 5
    LOCK_SECONDS = 300.0

    def __init__(self, secret_value: str) -> None:
        super().__init__(secret_value)
        self._guard = threading.Lock()
        self._wrong = 0
        self._locked_until = 0.0

    def check(self, entered: str, *, now: float | None = None) -> CodeCheck:
        """Compare `entered` in constant time, unless the code is locked. `now` is a
        time.monotonic() reading (tests move it)."""
        moment = time.monotonic() if now is None else now
        with self._guard:
            if moment < self._locked_until:
                return CodeCheck.LOCKED
            if hmac.compare_digest(entered.encode(), self.get_secret_value().encode()):
                self._wrong = 0
                return CodeCheck.ACCEPTED
            self._wrong += 1
            if self._wrong >= self.MAX_WRONG:
                self._wrong = 0
                self._locked_until = moment + self.LOCK_SECONDS
                return CodeCheck.LOCKED
            return CodeCheck.WRONG


class KioskSettings(BaseSettings):
    """Every field can come from the environment (KIOSK_SERVER_URL ...) or the CLI."""

    model_config = SettingsConfigDict(env_prefix="KIOSK_", extra="ignore")

    server_url: str = "http://127.0.0.1:8080"
    kiosk_id: str = ""
    kiosk_secret: SecretStr = SecretStr("")
    credential: SecretStr = SecretStr("")  # KIOSK_CREDENTIAL=id:secret, as `certserver kiosk add` prints it
    reader: str = "pcsc"  # pcsc, pcsc:NAME, virtual:CARDFILE or tray (in-process, the card tray fills it)
    printer_dir: Path = Path("printed")  # where "printed" PDFs land (the paper tray)
    # What the kiosk must not forget across a crash (outcome reports), 0700; by default
    # beside the printer folder: PRINTER_DIR/../kiosk-state.
    state_dir: Path | None = None
    paper_sheets: int = DEFAULT_SHEETS
    seconds_per_page: float = 0.0  # a printing delay, to make the progress visible in a demo
    # A default for the emulator: set KIOSK_OPERATOR_CODE. A factory, so each kiosk counts
    # its own wrong entries.
    operator_code: OperatorCode = Field(default_factory=lambda: OperatorCode("0000"))
    demo_cards: Path | None = None  # the demo card folder (index.json) for the operator's tray
    vpcd_port: int = 35963  # where the tray's virtual card connects ("Virtual PCD 00 00")
    http_timeout: float = 10.0
    idle_timeout: float = 60.0
    log_file: Path | None = None  # `kiosk run` logs here (0600); without one, to Textual's log only

    def credentials(self) -> tuple[str, str]:
        """(kiosk id, secret). Raises ValueError when none is configured."""
        if self.kiosk_id and self.kiosk_secret.get_secret_value():
            return self.kiosk_id, self.kiosk_secret.get_secret_value()
        kiosk_id, sep, secret = self.credential.get_secret_value().partition(":")
        if sep and kiosk_id and secret:
            return kiosk_id, secret
        raise ValueError(
            "no kiosk credential: give --kiosk-id with KIOSK_SECRET or --kiosk-secret-file, "
            "or KIOSK_CREDENTIAL=id:secret"
        )

    def timeouts(self) -> Timeouts:
        return Timeouts(default=self.idle_timeout, pin=self.idle_timeout, payment=max(self.idle_timeout, 90.0))


def outcome_reports_folder(state_dir: Path, kiosk_id: str) -> Path:
    """One kiosk's outcome reports: per kiosk id, since a report is delivered with its
    kiosk's credential (another kiosk would only be told the transaction is not its own)."""
    safe = (
        kiosk_id
        if kiosk_id.replace("-", "").replace("_", "").isalnum() and kiosk_id.isascii()
        else hashlib.sha256(kiosk_id.encode()).hexdigest()[:32]
    )
    return state_dir / safe / "outcome-reports"


@dataclass
class KioskDevices:
    """Everything one kiosk drives."""

    settings: KioskSettings
    runner: EffectRunner

    @property
    def kiosk_id(self) -> str:
        return self.runner.client.settings.kiosk_id

    def close(self) -> None:
        self.runner.reader.close()
        self.runner.client.close()


def build_devices(settings: KioskSettings, *, reader: CardReader | None = None) -> KioskDevices:
    """Open the reader and the service client. Raises ValueError (no credential),
    kiosk.card.ReaderSpecError, cardreader.status.ReaderError, CardFileError."""
    kiosk_id, secret = settings.credentials()
    client = ServiceClient(ClientSettings(settings.server_url, kiosk_id, secret, settings.http_timeout))
    try:
        reader = reader or open_reader(settings.reader)
    except BaseException:
        client.close()
        raise
    printer = Printer(settings.printer_dir, sheets=settings.paper_sheets, seconds_per_page=settings.seconds_per_page)
    state_dir = settings.state_dir or settings.printer_dir.absolute().parent / "kiosk-state"
    reports = OutcomeReports(outcome_reports_folder(state_dir, kiosk_id))
    return KioskDevices(settings, EffectRunner(reader, client, CashAcceptor(), printer, reports=reports))
