#!/usr/bin/env bash
# The README's main command: set up, start the issuing service on 127.0.0.1 with demo data
# (SQLite), start pcscd with the vpcd reader when it can, open the kiosk with the operator's
# card tray, and stop everything it started when the kiosk closes.
#
# Without a terminal (CI, a pipe) it runs one headless visit instead and verifies the PDF.
# KONBINI_DEMO_DIR picks the data folder (default var/demo); KONBINI_DEMO_FRESH=1 starts over
# (and clears the old printouts); KIOSK_UI=web serves the kiosk to a browser instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The demo's data folder, its service log and the printed certificates name (synthetic)
# residents: everything this script creates from here on is the user's own (0700 / 0600).
umask 077

DATA=${KONBINI_DEMO_DIR:-var/demo}
PY=.venv/bin/python
export KONBINI_STATE_DIR=$PWD/.run/demo

if [ "${KONBINI_DEMO_FRESH:-0}" = 1 ] || [ ! -f "$DATA/cards/index.json" ]; then
  echo "demo: creating the demo service in $DATA (test CA, 取手市 and つくば市, residents, cards),"
  echo "      one store per role: the centre, the JPKI service, the municipalities' certificate server"
  .venv/bin/certserver init --demo --split --force --data-dir "$DATA" 2>&1 | grep -v " INFO " || true
  # A fresh service numbers its certificates anew: old printouts would carry the same numbers.
  rm -rf "$DATA/kiosk.credential" "$DATA/kiosks.txt" "$DATA/printed" "$DATA/kiosk-state"
else
  echo "demo: reusing the demo service in $DATA: the cards keep their PIN tries left from earlier runs"
  echo "      (to start over: KONBINI_DEMO_FRESH=1 make demo; one card: .venv/bin/mynacard reset-pin CARDFILE)"
  # Cards whose PIN was mistyped in an earlier run: offered back to their demo PIN and full tries.
  used=$(.venv/bin/python - "$DATA/cards" <<'EOF'
import json, sys
from pathlib import Path
from kiosk.democards import read_index
for card in read_index(Path(sys.argv[1])):
    auth = json.loads(card.path.read_text(encoding="utf-8"))["pins"]["auth"]
    if auth["tries_left"] < auth["max_tries"]:
        print(f"{card.path.name}:{auth['tries_left']}")
EOF
  ) || used=""
  if [ -n "$used" ]; then
    echo "demo: cards with PIN tries used (file:tries left): $(echo $used)"
    if [ -t 0 ] && [ -z "${KONBINI_DEMO_NO_PAUSE:-}" ]; then
      read -r -p "      Reset them to their demo PIN and full tries? [y/N] " answer
      if [ "${answer:-n}" = y ] || [ "${answer:-n}" = Y ]; then
        for entry in $used; do
          file=${entry%%:*}
          # The demo PIN by standard input: a PIN on a command line is visible in `ps`.
          .venv/bin/python -c 'import json,sys; print(next(e["pin"] for e in json.load(open(sys.argv[1])) if e["file"] == sys.argv[2]))' \
            "$DATA/cards/index.json" "$file" | .venv/bin/mynacard reset-pin "$DATA/cards/$file" --pin-stdin >/dev/null
          echo "      $file: reset"
        done
      fi
    fi
  fi
fi
[ -f "$DATA/cards/index.json" ] || { echo "demo: init failed" >&2; exit 1; }

# One kiosk credential, made once and kept (mode 600) beside the data.
if [ ! -f "$DATA/kiosk.credential" ]; then
  credential=$(.venv/bin/certserver kiosk add --data-dir "$DATA" --id DEMO-001 --store "デモ店（取手駅前）" 2>/dev/null |
    sed -n 's/^KIOSK_CREDENTIAL=//p')
  [ -n "$credential" ] || { echo "demo: could not register the demo kiosk" >&2; exit 1; }
  (umask 077; echo "$credential" >"$DATA/kiosk.credential")
fi
export KIOSK_CREDENTIAL
KIOSK_CREDENTIAL=$(cat "$DATA/kiosk.credential")

server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  scripts/services.sh stop
}
trap cleanup EXIT

# The centre on PORT, the municipalities' certificate server (HTTPS, mutual TLS) on PORT+1.
PORT=$($PY - <<'EOF'
import socket
for port in range(8080, 8180, 2):
    with socket.socket() as a, socket.socket() as b:
        try:
            a.bind(("127.0.0.1", port))
            b.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        print(port)
        break
EOF
)
URL=http://127.0.0.1:$PORT
# The service keeps the real hours (06:30-23:00 JST, some certificates weekdays only, closed
# 29 Dec - 3 Jan). Unless every certificate is on offer now (the service's own calendar says),
# the demo runs the service's clock from the next weekday 10:00 JST instead, and says so.
PRETEND=$($PY - <<'EOF'
import datetime as dt
from certserver.services.rules.calendar import next_surely_open
now = dt.datetime.now(dt.UTC)
if (moment := next_surely_open(now)) != now:
    print(moment.isoformat())
EOF
)
serve_options=()
if [ -n "$PRETEND" ]; then
  echo "demo: outside service hours in Japan now, so the service pretends it is $PRETEND"
  serve_options=(--pretend-time "$PRETEND")
fi
.venv/bin/certserver serve --data-dir "$DATA" --host 127.0.0.1 --port "$PORT" "${serve_options[@]}" \
  >"$DATA/service.log" 2>&1 &
server_pid=$!
if ! $PY - "$URL" <<'EOF'
import sys, time, httpx
for _ in range(600):
    try:
        if httpx.get(sys.argv[1] + "/api/v1/health", timeout=1).status_code == 200:
            sys.exit(0)
    except httpx.HTTPError:
        pass
    time.sleep(0.1)
sys.exit(1)
EOF
then
  echo "demo: the issuing service did not start; its log:" >&2; tail -20 "$DATA/service.log" >&2; exit 1
fi
echo "demo: issuing service at $URL (log: $DATA/service.log)"
DATA_ABS=$(cd "$DATA" && pwd)
echo "demo: for the README's other commands, in another shell:"
echo "  export CERTSERVER_DATA_DIR=$DATA_ABS KIOSK_SERVER_URL=$URL"
echo "  export KIOSK_CREDENTIAL=\$(cat $DATA_ABS/kiosk.credential)"

PRINTED=$DATA/printed
mkdir -p "$PRINTED"

if [ "${KIOSK_UI:-terminal}" != web ] && { [ ! -t 0 ] || [ ! -t 1 ]; }; then
  echo "demo: no terminal, so one headless visit instead of the touch screen:"
  # The demo card's PIN by the environment: a PIN on a command line is visible in `ps`.
  out=$(KIOSK_PIN=1234 .venv/bin/kiosk simulate --server "$URL" --card "$DATA/cards/toride-0001.json" \
    --certificate juminhyo --persons all --options setainushi --copies 1 --pay 1000 --out "$PRINTED") || true
  echo "$out"
  pdf=$(echo "$out" | $PY -c 'import json,sys; d=json.load(sys.stdin); print((d.get("documents") or [""])[0])')
  [ -n "$pdf" ] || { echo "demo: the visit issued nothing" >&2; exit 1; }
  .venv/bin/certserver verify --data-dir "$DATA" "$pdf"
  exit 0
fi

if [ "${KIOSK_UI:-terminal}" = web ]; then
  # One kiosk per browser tab, each with its own credential and its own in-process card tray.
  if [ ! -f "$DATA/kiosks.txt" ]; then
    .venv/bin/certserver kiosk add --data-dir "$DATA" --count 8 --id WEB --store "デモ店（ブラウザ）" \
      --out "$DATA/kiosks.txt" >/dev/null
  fi
  WEB_PORT=$($PY -c 'import socket
for port in range(8000, 8080):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        print(port)
        break')
  echo
  echo "  コンビニ交付 demo in a browser — every person, key and fee here is made up (TEST ONLY)."
  echo "  Open http://127.0.0.1:$WEB_PORT/ (one kiosk per tab, up to 8). F12 (operator code 0000) opens"
  echo "  that tab's card tray: place a card, close the panel (Esc). Demo cards and their PINs:"
  $PY -m kiosk.democards "$DATA/cards"
  echo "  Printed certificates go to $PRINTED. Ctrl+C stops the kiosk server and the service."
  status=0
  .venv/bin/kiosk serve --server "$URL" --credentials "$DATA/kiosks.txt" --demo-cards "$DATA/cards" \
    --printer-dir "$PRINTED" --port "$WEB_PORT" || status=$?
  exit $status
fi

eval "$(scripts/services.sh start pcscd)"
if scripts/services.sh ready-pcscd; then
  reader=(--reader "pcsc:Virtual PCD 00 00" --demo-cards "$DATA/cards")
  how="F12 (operator code 0000) opens the card tray: place a card, then close the panel."
else
  reader=(--reader "virtual:$DATA/cards/toride-0001.json")
  how="No pcscd here: the in-process reader already holds toride-0001's card."
fi

cat <<EOF

  コンビニ交付 demo — every person, key and fee here is made up (TEST ONLY).
  $how
  Demo cards and their PINs:
EOF
$PY -m kiosk.democards "$DATA/cards"
cat <<EOF
  Printed certificates go to $PRINTED. Ctrl+Q quits.
EOF
if [ -z "${KONBINI_DEMO_NO_PAUSE:-}" ]; then read -r -p "  Press Enter to open the kiosk (Ctrl+C stops the demo here). " _; fi

status=0
.venv/bin/kiosk run --server "$URL" "${reader[@]}" --printer-dir "$PRINTED" || status=$?
echo "demo: printed certificates are in $PRINTED; check one with:"
echo "  .venv/bin/certserver verify --data-dir $DATA $PRINTED/<file>.pdf   (a certificate; *-receipt.pdf are receipts)"
exit $status
