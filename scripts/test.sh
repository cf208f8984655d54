#!/usr/bin/env bash
# The README's test command: set up, start pcscd + vpcd and PostgreSQL, run every test,
# stop what was started. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
trap 'scripts/services.sh stop' EXIT
eval "$(scripts/services.sh start)"
.venv/bin/python -m pytest "$@"
