#!/usr/bin/env bash
# `make bench`: set up, start pcscd with the vpcd reader (the card and kiosk benchmarks use
# it), run every benchmark in one run, stop what was started. Arguments go to
# bench/run_all.py (--quick for short runs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export KONBINI_STATE_DIR=$PWD/.run/bench
trap 'scripts/services.sh stop' EXIT
eval "$(scripts/services.sh start pcscd)"
.venv/bin/python bench/run_all.py "$@"
