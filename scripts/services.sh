#!/usr/bin/env bash
# Starts (or stops) what the tests and the demo need on this machine: pcscd with vsmartcard's
# vpcd reader driver, and a PostgreSQL cluster with a `kiosk` role. Only what this script
# started is stopped again. `start` prints `export` lines for the caller to eval.
# KONBINI_STATE_DIR keeps apart what two callers (tests, demo) started.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=${KONBINI_STATE_DIR:-$PWD/.run}
mkdir -p "$STATE"
PG_URL=postgresql+psycopg://kiosk:kiosk@127.0.0.1:5432/certserver_test

pcscd_ready() {
  [ -S /run/pcscd/pcscd.comm ] && ss -Hltn 'sport = :35963' | grep -q LISTEN
}

start_pcscd() {
  if pcscd_ready; then return 0; fi
  if [ ! -x /usr/sbin/pcscd ] || [ ! -f /etc/reader.conf.d/vpcd ]; then
    echo "services: pcscd or vpcd not installed; PC/SC tests will be skipped" >&2; return 0
  fi
  # A pid file left by a killed pcscd stops a new one from starting.
  if [ -f /run/pcscd/pcscd.pid ] && ! kill -0 "$(tr -dc 0-9 </run/pcscd/pcscd.pid)" 2>/dev/null; then
    rm -f /run/pcscd/pcscd.pid /run/pcscd/pcscd.comm
  fi
  /usr/sbin/pcscd --foreground >"$STATE/pcscd.log" 2>&1 &
  echo $! >"$STATE/pcscd.started"
  # Readiness by socket and listening port only: any TCP connection to vpcd is a card.
  for _ in $(seq 200); do pcscd_ready && return 0; sleep 0.05; done
  echo "services: pcscd did not come up (see $STATE/pcscd.log)" >&2; return 1
}

start_postgres() {
  command -v pg_ctlcluster >/dev/null || { echo "services: PostgreSQL not installed" >&2; return 0; }
  local version
  version=$(pg_lsclusters -h 2>/dev/null | awk 'NR==1{print $1}')
  [ -n "$version" ] || { echo "services: no PostgreSQL cluster" >&2; return 0; }
  if ! pg_lsclusters -h | awk 'NR==1{print $4}' | grep -q online; then
    # fd 3 closed: a server that inherits the caller's pipe keeps $(...) waiting forever.
    pg_ctlcluster "$version" main start 3>&-
    echo "$version" >"$STATE/postgres.started"
  fi
  su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='kiosk'\"" | grep -q 1 ||
    su postgres -c "psql -qc \"CREATE ROLE kiosk LOGIN PASSWORD 'kiosk' CREATEDB\""
  su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='certserver_test'\"" | grep -q 1 ||
    su postgres -c "psql -qc 'CREATE DATABASE certserver_test OWNER kiosk'"
  echo "export CERTSERVER_TEST_POSTGRES_URL=$PG_URL" >&3
}

stop_all() {
  if [ -f "$STATE/pcscd.started" ]; then
    kill "$(cat "$STATE/pcscd.started")" 2>/dev/null || true
    rm -f "$STATE/pcscd.started"
  fi
  if [ -f "$STATE/postgres.started" ]; then
    pg_ctlcluster "$(cat "$STATE/postgres.started")" main stop || true
    rm -f "$STATE/postgres.started"
  fi
}

# start [all|pcscd]: the tests need both; the demo only pcscd.
case "${1:-}" in
  start)
    # Only the export lines (fd 3) reach stdout, which the caller evals; anything else a
    # tool prints (pg_ctlcluster's notices, say) goes to stderr.
    if [ "$(id -u)" = 0 ]; then
      start_pcscd >&2
      if [ "${2:-all}" = all ]; then start_postgres 3>&1 >&2; fi
    else
      echo "services: not root; using whatever pcscd/PostgreSQL already run" >&2
    fi ;;
  stop) stop_all ;;
  ready-pcscd) pcscd_ready ;;
  *) echo "usage: $0 start [all|pcscd] | stop | ready-pcscd" >&2; exit 2 ;;
esac
