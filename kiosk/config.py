"""Settings of the kiosk (environment prefix KIOSK_), built at the entry point and passed
down; and the assembly of one kiosk's devices from them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from kiosk.card import CardReader, open_reader
from kiosk.client import ClientSettings, ServiceClient
from kiosk.flow import Timeouts
from kiosk.payment import CashAcceptor
from kiosk.printer import DEFAULT_SHEETS, Printer
from kiosk.runner import EffectRunner


class KioskSettings(BaseSettings):
    """Every field can come from the environment (KIOSK_SERVER_URL ...) or the CLI."""

    model_config = SettingsConfigDict(env_prefix="KIOSK_", extra="ignore")

    server_url: str = "http://127.0.0.1:8080"
    kiosk_id: str = ""
    kiosk_secret: str = ""
    credential: str = ""  # KIOSK_CREDENTIAL=id:secret, as `certserver kiosk add` prints it
    reader: str = "pcsc"  # pcsc, pcsc:NAME or virtual:CARDFILE
    printer_dir: Path = Path("printed")  # where "printed" PDFs land (the paper tray)
    paper_sheets: int = DEFAULT_SHEETS
    seconds_per_page: float = 0.0  # a printing delay, to make the progress visible in a demo
    operator_code: str = "0000"  # a default for the emulator: set your own
    demo_cards: Path | None = None  # the demo card folder (index.json) for the operator's tray
    vpcd_port: int = 35963  # where the tray's virtual card connects ("Virtual PCD 00 00")
    http_timeout: float = 10.0
    idle_timeout: float = 60.0
    log_file: Path | None = None  # `kiosk run` logs here (0600); without one, to Textual's log only

    def credentials(self) -> tuple[str, str]:
        """(kiosk id, secret). Raises ValueError when none is configured."""
        if self.kiosk_id and self.kiosk_secret:
            return self.kiosk_id, self.kiosk_secret
        kiosk_id, sep, secret = self.credential.partition(":")
        if sep and kiosk_id and secret:
            return kiosk_id, secret
        raise ValueError("no kiosk credential: give --kiosk-id and --kiosk-secret "
                         "(or KIOSK_ID/KIOSK_SECRET, or KIOSK_CREDENTIAL=id:secret)")

    def timeouts(self) -> Timeouts:
        return Timeouts(default=self.idle_timeout, pin=self.idle_timeout, payment=max(self.idle_timeout, 90.0))


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
    return KioskDevices(settings, EffectRunner(reader, client, CashAcceptor(), printer))
