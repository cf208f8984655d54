"""Render one signed sample of each certificate type into docs/samples/.

Writes <kind>.pdf and <kind>.png (page 1 at 80 dpi, via poppler's pdftoppm) from the
synthetic contents in konbini_testkit/certificate_samples.py, signed by a throw-away test CA made in
a temporary folder. Run from the repository root: `python scripts/render_samples.py`.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from certserver.documents.service import DocumentService

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo, for konbini_testkit
from konbini_testkit import certificate_samples as samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/samples"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    pdftoppm = shutil.which("pdftoppm")
    with tempfile.TemporaryDirectory() as tmp:
        service = DocumentService(samples.demo_signers(Path(tmp) / "ca"))
        for stem, content in samples.one_of_each().items():
            document = service.render(content)
            pdf_path = args.out / f"{stem}.pdf"
            pdf_path.write_bytes(document.pdf)
            if pdftoppm:
                subprocess.run(
                    [
                        pdftoppm,
                        "-r",
                        "80",
                        "-png",
                        "-f",
                        "1",
                        "-l",
                        "1",
                        "-singlefile",
                        str(pdf_path),
                        str(args.out / stem),
                    ],
                    check=True,
                )
            print(f"{pdf_path} ({document.pages} page(s), {len(document.pdf)} bytes)")
    if not pdftoppm:
        print("pdftoppm not found (Debian poppler-utils): PNGs not written", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
