"""`certserver verify FILE.pdf` and `certserver verify --qr TEXT`: check a certificate offline
against this service's document CA and municipality QR keys.

Exit codes: 0 valid, 3 modified, 4 unknown issuer, 5 withdrawn, 6 malformed; 2 for usage
errors (unreadable file, no CA). The issuing records are not consulted here (offline check);
the API's /verify endpoints add the withdrawn/issued status.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from certserver.cli import CliError, settings_from

EXIT_CODES = {
    "valid": 0,
    "modified": 3,
    "unknown_issuer": 4,
    "revoked_or_withdrawn": 5,
    "malformed": 6,
}


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "verify",
        parents=[common],
        help="verify a certificate PDF or the text of its QR code",
        description="Verify a certificate's PDF signature and QR code against this service's "
        "document CA. Exit 0 only when valid (3 modified, 4 unknown issuer, 5 withdrawn, 6 malformed).",
    )
    parser.add_argument("file", nargs="?", type=Path, help="the certificate PDF")
    parser.add_argument(
        "--qr", metavar="TEXT", help="the decoded text of the certificate's QR code"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from certserver.documents.verification import TrustStore, verify_pdf, verify_qr

    if (args.file is None) == (args.qr is None):
        raise CliError("give either a PDF file or --qr TEXT (one of them)")
    ca_dir = settings_from(args).ca_dir
    try:
        trust = TrustStore.from_ca_dir(ca_dir)
    except ValueError as exc:
        raise CliError(f"cannot read the trust store in {ca_dir}: {exc}") from exc
    if not trust.anchors:
        raise CliError(f"no document CA in {ca_dir}: run `certserver init` or pass --data-dir")
    if args.qr is not None:
        result = verify_qr(args.qr, trust)
    else:
        try:
            pdf = args.file.read_bytes()
        except OSError as exc:
            raise CliError(f"cannot read {args.file}: {exc.strerror}") from exc
        result = verify_pdf(pdf, trust)
    number = f" {result.certificate_number}" if result.certificate_number else ""
    print(f"{result.status.value.upper()}{number}: {result.reason_ja} / {result.reason_en}")
    return EXIT_CODES[result.status.value]
