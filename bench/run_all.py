"""Every benchmark, one after the other, in one run: the card, the documents, the service.

    python bench/run_all.py [--quick]

Each part prints its own figures and goals; this only runs them in order and says which
failed to run. The card benchmark needs pcscd with vpcd (`scripts/services.sh start`).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

FULL = [
    ["card_bench.py"],
    ["documents_bench.py"],
    ["service_bench.py", "--kiosks", "50", "--seconds", "10"],
    ["service_steps_bench.py"],
    ["service_documents_bench.py"],
    ["kiosk_bench.py"],
]
QUICK = [
    ["card_bench.py", "--apdus", "2000", "--auths", "10"],
    ["documents_bench.py", "--seconds", "1"],
    ["service_bench.py", "--kiosks", "10", "--seconds", "3"],
    ["service_steps_bench.py", "--transactions", "20"],
    ["service_documents_bench.py", "--seconds", "3"],
    ["kiosk_bench.py", "--transactions", "5", "--warmup", "1", "--startups", "2", "--pty-startups", "1"],
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs, to check the benchmarks work")
    args = parser.parse_args()
    failed = []
    for script, *options in QUICK if args.quick else FULL:
        print(f"\n=== {script} {' '.join(options)}", flush=True)
        if subprocess.run([sys.executable, str(HERE / script), *options]).returncode != 0:
            failed.append(script)
    if failed:
        print(f"\nfailed to run: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
