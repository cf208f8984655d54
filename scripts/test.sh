#!/usr/bin/env bash
# The README's test command: set up, start pcscd + vpcd and PostgreSQL, run every test,
# stop what was started. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
trap 'scripts/services.sh stop' EXIT
eval "$(scripts/services.sh start)"
# Services this script started are required: their tests must not quietly skip.
if [ "$(id -u)" = 0 ]; then export KONBINI_REQUIRE_PCSC=1 KONBINI_REQUIRE_POSTGRES=1 KONBINI_REQUIRE_GO=1; fi
.venv/bin/python -m pytest "$@"
