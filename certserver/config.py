"""Settings of the issuing service (environment prefix CERTSERVER_).

Built once at the entry point (CLI, app factory) and passed down; never a module-level
singleton, so tests can run several services with different settings in one process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime
from pydantic_settings import BaseSettings, SettingsConfigDict

Role = Literal["centre", "jpki", "municipalities"]  # the stores of a data folder laid out per role


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CERTSERVER_", extra="ignore")

    data_dir: Path = Path("var")
    # Empty means the SQLite file `<data_dir>/certserver.db`.
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    challenge_ttl_seconds: int = 60
    transaction_ttl_seconds: int = 600
    # Threads that wait for renders (at least render_processes of them are started).
    render_pool_size: int = 2
    # Worker processes that render and sign the certificate PDFs beside the web server, on
    # the other cores; 0 renders in threads of the server's own process. `certserver serve`
    # defaults to processes (documents.render_processes.default_render_processes); a bare
    # Settings() renders in-process, so tests and embedded apps start no processes unasked.
    render_processes: int = 0
    # Demos and training only: the service's clock starts at this moment (with its zone),
    # or at the audit log's newest entry when that is later, and runs on from there, so a
    # demo outside service hours still issues. Every transaction, document date, revocation,
    # CRL, OCSP answer and audit entry then carries the pretended time (certserver.clock).
    pretend_time: AwareDatetime | None = None
    # TESTS ONLY: start even when other users may enter or read the data folder, which
    # holds residents' data and keys (certserver.data_folder).
    allow_open_data_dir: bool = False
    # The centre's LGWAN link: municipality code -> its certificate server's base URL
    # (https, mutual TLS with the files in `lgwan_dir`). Empty: every municipality's
    # certificate server runs inside this process, on this database (the all-in-one service).
    lgwan_endpoints: dict[str, str] = {}
    lgwan_tls_dir: Path | None = None  # default: <data_dir>/lgwan
    lgwan_timeout_seconds: float = 30.0

    # Which store this process works on when the data folder is laid out per role
    # (`certserver init --split`): the centre's (kiosks, transactions), the JPKI service's
    # (the card certificates it issued) or the municipalities' certificate server's (their
    # registries). Ignored in the all-in-one layout, where one database holds everything.
    role: Role = "centre"

    @property
    def split_layout(self) -> bool:
        """The data folder has one store per role (分散管理) instead of one database."""
        return not self.database_url and (self.data_dir / "centre").is_dir()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.store_dir / 'certserver.db').resolve()}"

    @property
    def store_dir(self) -> Path:
        """The folder of this role's database: the data folder, or its role's subfolder."""
        return self.data_dir / self.role if self.split_layout else self.data_dir

    def for_role(self, role: Role) -> Settings:
        return self.model_copy(update={"role": role})

    @property
    def lgwan_dir(self) -> Path:
        return self.lgwan_tls_dir if self.lgwan_tls_dir is not None else self.data_dir / "lgwan"

    @property
    def ca_dir(self) -> Path:
        return self.data_dir / "ca"

    @property
    def cards_dir(self) -> Path:
        return self.data_dir / "cards"
