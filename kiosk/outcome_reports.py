"""The kiosk's outcome reports to the service, kept on disk until the service answers.

What a kiosk did with a paid transaction is a fact only the kiosk knows: "printed" (the
certificates are in the person's hand, the fee is collected) or "cancel" (nothing was handed
out and the money went back). A report lost with a crash of the service, of the network or
of the kiosk itself would leave the service guessing, and a guess either voids paper a person
holds or keeps a fee that was returned (2023-24 failures, service.md §7). So a report is
written durably *before* it is sent, sent with the same Idempotency-Key on every try, and
removed only once the service has answered; the kiosk delivers what is pending before it
starts the next transaction (and when it starts up).

A report holds ids only (transaction, documents, the key): nothing about the person.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from kiosk.client import (
    SERVICE_ID,
    ServiceClient,
    ServiceError,
    ServiceTimeoutError,
    ServiceUnreachableError,
)
from konbini_common.durable import fsync_folder, write_atomic

logger = logging.getLogger(__name__)

ReportKind = Literal["printed", "cancel"]
# Answers that are no answer yet: the same report is sent again later.
_RETRY_CODES = frozenset({"request_in_progress", "unreachable", "timeout"})


class OutcomeReportError(Exception):
    """A report that cannot be kept (an id the API could not have made)."""


@dataclass(frozen=True)
class OutcomeReport:
    kind: ReportKind
    transaction_id: str
    documents: tuple[str, ...]
    idempotency_key: str
    made_at: str  # ISO 8601, UTC: the order reports are delivered in

    @property
    def file_name(self) -> str:
        return f"{self.kind}-{self.transaction_id}.json"


def new_report(kind: ReportKind, transaction_id: str, documents: tuple[str, ...] = ()) -> OutcomeReport:
    """A report with a fresh Idempotency-Key. Raises OutcomeReportError for a malformed id."""
    # The API's own id pattern: a transaction id goes into a file name here.
    if not all(SERVICE_ID.fullmatch(i) for i in (transaction_id, *documents)):
        raise OutcomeReportError("an id that does not fit the API's pattern")
    return OutcomeReport(kind, transaction_id, documents, uuid.uuid4().hex, datetime.now(UTC).isoformat())


class OutcomeReports:
    """Pending reports of one kiosk: one file each in `folder` (0700, files 0600), or in
    memory only when `folder` is None (test doubles that own no disk)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._memory: dict[str, OutcomeReport] = {}
        # One delivery at a time: a report must not race its own retry.
        self._lock = threading.RLock()
        if folder is not None:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(folder, 0o700)

    def keep(self, report: OutcomeReport) -> None:
        """Write the report durably (it survives a crash from here on)."""
        with self._lock:
            if self.folder is None:
                self._memory[report.file_name] = report
                return
            write_atomic(
                self.folder / report.file_name, json.dumps(asdict(report), separators=(",", ":")).encode("ascii")
            )

    def pending(self) -> list[OutcomeReport]:
        """Reports not yet answered, oldest first. An unreadable file is skipped (and logged):
        it must not stop the kiosk, and it is left for the operator."""
        with self._lock:
            if self.folder is None:
                return sorted(self._memory.values(), key=lambda r: r.made_at)
            reports = []
            for path in sorted(self.folder.glob("*.json")):
                try:
                    raw = json.loads(path.read_bytes())
                    reports.append(
                        OutcomeReport(
                            raw["kind"],
                            raw["transaction_id"],
                            tuple(raw["documents"]),
                            raw["idempotency_key"],
                            raw["made_at"],
                        )
                    )
                except (OSError, ValueError, KeyError, TypeError):
                    logger.error("outcome report %s is unreadable; left for the operator", path.name)
            return sorted(reports, key=lambda r: r.made_at)

    def deliver(self, client: ServiceClient) -> int:
        """Send every pending report, oldest first, until one gets no answer; returns how
        many are still pending. Never raises for the service's failures."""
        with self._lock:
            pending = self.pending()
            for index, report in enumerate(pending):
                if not self._send(client, report):
                    return len(pending) - index
                self._forget(report)
            return 0

    def _send(self, client: ServiceClient, report: OutcomeReport) -> bool:
        """True when the service answered (its answer is final), False to try again later."""
        try:
            if report.kind == "printed":
                client.printed(report.transaction_id, idempotency_key=report.idempotency_key)
            else:
                client.cancel(report.transaction_id, idempotency_key=report.idempotency_key)
        except (ServiceUnreachableError, ServiceTimeoutError):
            logger.warning(
                "%s report of transaction %s not delivered yet (service unreachable)",
                report.kind,
                report.transaction_id,
            )
            return False
        except ServiceError as exc:
            if exc.code in _RETRY_CODES or exc.status >= 500:
                logger.warning(
                    "%s report of transaction %s not delivered yet (%s)", report.kind, report.transaction_id, exc.code
                )
                return False
            # An answer all the same (the transaction ended otherwise): nothing to retry.
            logger.warning("%s report of transaction %s answered %s", report.kind, report.transaction_id, exc.code)
        return True

    def _forget(self, report: OutcomeReport) -> None:
        if self.folder is None:
            self._memory.pop(report.file_name, None)
            return
        (self.folder / report.file_name).unlink(missing_ok=True)
        fsync_folder(self.folder)  # the removal is as durable as the write
