#!/usr/bin/env bash
# Installs what the project needs on a Debian machine, idempotently:
# system packages (when run as root), a virtual environment in .venv, the project with its
# dev extras. Safe to run again; it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(pcscd libpcsclite-dev swig vsmartcard-vpcd opensc pcsc-tools
  postgresql fonts-ipaexfont-mincho fonts-ipaexfont-gothic poppler-utils zbar-tools
  gcc python3-dev python3-venv golang-go chromium)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    echo "setup: apt-get update ..."
    apt-get update -qq
    echo "setup: apt-get install (a minute or two on a fresh machine) ..."
    # --no-install-recommends: pcsc-tools would otherwise pull in GTK and Perl modules.
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing system packages (run as root or install them): ${missing[*]}" >&2
  fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating the virtual environment .venv ..."
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "setup: installing the project and its dev tools into .venv (pip; pyscard compiles, ~1 min) ..."
  .venv/bin/pip install -q --upgrade pip
  # pyscard has no Linux wheel: it compiles here against libpcsclite-dev.
  .venv/bin/pip install -q -e '.[dev]'
  rm -f .venv/.installed-*
  touch "$stamp"
  echo "setup: done"
fi
