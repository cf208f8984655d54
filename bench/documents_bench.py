"""Throughput of the certificate documents, one process, in one run.

Prints documents/s for: rendering alone (layout + PDF, QR drawn, unsigned), the full
pipeline `DocumentService.render` (render + QR signature + PAdES signature), the PAdES
signature alone, and verification (PDF, QR). Uses a throw-away test CA in a temp folder.

    python bench/documents_bench.py [--seconds 3] [--kinds juminhyo inkan]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from pypdf import PdfReader

from certserver.documents.content import CertificateContent
from certserver.documents.layouts import layout_for
from certserver.documents.pades import PadesSigner
from certserver.documents.qr import sign_payload
from certserver.documents.render import render_pdf
from certserver.documents.service import DocumentService, keywords_for
from certserver.documents.verification import TrustStore, verify_pdf, verify_qr
from konbini_testkit.pyhanko_signer import PyhankoPadesSigner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo, for konbini_testkit
from konbini_testkit import certificate_samples as samples


def rate(label: str, seconds: float, work: Callable[[int], object]) -> float:
    """Run `work` for `seconds`; print the rate by wall clock and by this process's CPU time
    (the machine is shared: the CPU figure is what the code costs, the wall figure what it got)."""
    work(0)  # warm caches
    count, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while (elapsed := time.perf_counter() - start) < seconds:
        count += 1
        work(count)
    cpu = time.process_time() - cpu_start
    per_second, per_cpu_second = count / elapsed, count / cpu
    print(
        f"{label:<50} {per_second:8.1f} /s wall  {per_cpu_second:8.1f} /s cpu  "
        f"{1000 * cpu / count:7.2f} ms cpu each  (n={count})"
    )
    return per_cpu_second


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each measurement")
    parser.add_argument(
        "--kinds",
        nargs="+",
        default=["juminhyo", "inkan"],
        choices=list(samples.one_of_each()),
        help="sample certificates to measure (default: a 2-page 住民票 and a 1-page 印鑑登録証明書)",
    )
    args = parser.parse_args()
    print(f"cpus={os.cpu_count()} python={sys.version.split()[0]} load={os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        ca_dir = Path(tmp) / "ca"
        store = samples.demo_signers(ca_dir)
        service = DocumentService(store)
        signer = store.signer(samples.ISSUER.code)
        trust = TrustStore.from_ca_dir(ca_dir)
        for kind in args.kinds:
            base = samples.one_of_each()[kind]

            def numbered(i: int, base: CertificateContent = base) -> CertificateContent:
                return replace(base, certificate_number=f"R8-{i:06d}")

            def render_only(i: int) -> bytes:
                content = numbered(i)
                qr = sign_payload(
                    signer.qr_key,
                    content.issuer.code,
                    content.certificate_number,
                    content.issued_on,
                    content.content_hash(),
                ).text()
                return render_pdf(content, layout_for(content), qr, keywords_for(content, qr)).pdf

            document = service.render(base)
            print(f"\n{kind}: {document.pages} page(s), {len(document.pdf)} bytes")
            render = rate("render only (layout + PDF + QR drawn)", args.seconds, render_only)
            full = rate(
                "render + QR signature + PAdES (DocumentService)",
                args.seconds,
                lambda i: service.render(numbered(i)),
            )
            print(f"  signed pipeline / render only (cpu) = {full / render:.2f}")

        unsigned = render_only(0)
        info = PdfReader(io.BytesIO(document.pdf)).metadata
        keywords = info.keywords if info is not None else None
        if keywords is None:
            raise SystemExit("the rendered PDF carries no keywords (the QR payload is one)")
        qr_text = next(p[3:] for p in keywords.split() if p.startswith("qr:"))
        print("\nsignature and verification (last kind)")
        pades, pyhanko_pades = PadesSigner(signer), PyhankoPadesSigner(signer)
        rate(
            "PAdES signature only (direct writer, used)",
            args.seconds,
            lambda i: pades.sign(unsigned),
        )
        rate(
            "PAdES signature only (pyHanko, comparison)",
            args.seconds,
            lambda i: pyhanko_pades.sign(unsigned),
        )
        rate(
            "verify_pdf (signature, chain, QR, metadata)",
            args.seconds,
            lambda i: verify_pdf(document.pdf, trust),
        )
        rate("verify_qr", args.seconds, lambda i: verify_qr(qr_text, trust))
    return 0


if __name__ == "__main__":
    sys.exit(main())
