"""`certserver verify FILE.pdf` and `certserver verify --qr TEXT`: check a certificate against
this service's document CA and municipality QR keys and, when the data folder holds the
service's database, against its issuing records (issued or withdrawn), as the API's
`POST /verify/pdf` and `/verify/qr` do. With the CA folder alone the check is offline:
signature and QR code only, and a note says that withdrawal was not checked.

Exit codes: see EXIT_CODES (listed in --help).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from certserver.cli import CliError, settings_from

if TYPE_CHECKING:
    from certserver.config import Settings
    from certserver.documents.verification import Lookup

EXIT_CODES = {
    "valid": 0,
    "modified": 3,
    "unknown_issuer": 4,
    "revoked_or_withdrawn": 5,
    "malformed": 6,
    "indeterminate": 7,
}
_EXIT_HELP = (
    "Exit codes: 0 valid; 2 usage error (unreadable file, no document CA); 3 modified; "
    "4 unknown issuer (or not in the issuing records); 5 withdrawn after issue; 6 malformed "
    "(not a signed certificate); 7 indeterminate (verification itself failed, e.g. the "
    "database failed during the lookup: the document was not judged; the error is logged)."
)


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "verify",
        parents=[common],
        help="verify a certificate PDF or the text of its QR code",
        description="Verify a certificate's PDF signature and QR code against this service's "
        "document CA and, when the data folder holds the service's database, its issuing "
        "records (withdrawn certificates). " + _EXIT_HELP,
    )
    parser.add_argument("file", nargs="?", type=Path, help="the certificate PDF")
    parser.add_argument("--qr", metavar="TEXT", help="the decoded text of the certificate's QR code")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="with an indeterminate result, also print the error's traceback (for a bug report)",
    )
    parser.set_defaults(handler=run)


def _one_line(record: logging.LogRecord) -> bool:
    """A verifier error logged as one line: a damaged file that trips a library bug must not
    show a person a traceback (--debug shows it)."""
    if record.exc_info:
        record.msg = (
            f"{record.getMessage()}: {record.exc_info[0].__name__ if record.exc_info[0] else 'error'} "
            "(certserver verify --debug shows the traceback)"
        )
        record.args = None
        record.exc_info = None
        record.exc_text = None
    return True


@contextmanager
def _issuing_records(settings: Settings) -> Iterator[Lookup | None]:
    """The lookup of a certificate number in the service's database (what the API's
    verification consults), or None when the data folder has no database; looking creates
    nothing. Raises CliError for a database that cannot be opened or was never initialised
    (a wrong folder, not a verdict); an error during a lookup gives INDETERMINATE."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    from certserver.centre.transactions import certificate_status
    from certserver.db.models.transactions import IssuedDocument
    from certserver.db.session import make_engine, make_session_factory

    url = settings.resolved_database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        yield None
        return
    engine = make_engine(url)
    try:
        initialised = inspect(engine).has_table(IssuedDocument.__tablename__)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise CliError(f"cannot open the database: {exc.__class__.__name__}") from exc
    if not initialised:
        engine.dispose()
        raise CliError(f"the database of {settings.data_dir} has no issuing records: run `certserver init` first")
    factory = make_session_factory(engine)

    def lookup(certificate_number: str) -> str | None:
        with factory() as session:
            return certificate_status(session, certificate_number)

    try:
        yield lookup
    finally:
        engine.dispose()


def run(args: argparse.Namespace) -> int:
    from certserver.documents.verification import (
        TrustStore,
        VerificationStatus,
        verify_pdf,
        verify_qr,
    )

    if (args.file is None) == (args.qr is None):
        raise CliError("give either a PDF file or --qr TEXT (one of them)")

    settings = settings_from(args)
    ca_dir = settings.ca_dir
    try:
        trust = TrustStore.from_ca_dir(ca_dir)
    except ValueError as exc:
        raise CliError(f"cannot read the trust store in {ca_dir}: {exc}") from exc
    if not trust.anchors:
        raise CliError(f"no document CA in {ca_dir}: run `certserver init` or pass --data-dir")
    pdf = None
    if args.file is not None:
        try:
            pdf = args.file.read_bytes()
        except OSError as exc:
            raise CliError(f"cannot read {args.file}: {exc.strerror}") from exc
    verifier_log = logging.getLogger(verify_pdf.__module__)
    if not args.debug:
        verifier_log.addFilter(_one_line)
    try:
        with _issuing_records(settings) as lookup:
            result = verify_qr(args.qr, trust, lookup) if pdf is None else verify_pdf(pdf, trust, lookup)
    finally:
        verifier_log.removeFilter(_one_line)
    number = f" {result.certificate_number}" if result.certificate_number else ""
    print(f"{result.status.value.upper()}{number}: {result.reason_ja} / {result.reason_en}")
    if lookup is None and result.status is VerificationStatus.VALID:
        print(
            f"certserver: note: no database in {settings.data_dir}: whether the certificate "
            "was withdrawn was not checked",
            file=sys.stderr,
        )
    return EXIT_CODES[result.status.value]
