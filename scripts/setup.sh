#!/usr/bin/env bash
# Set up a fresh Debian machine for cubestac: PostgreSQL 15 + PostGIS 3 (apt), a virtualenv
# in .venv with the project and its test extras, every package at the version pinned in
# requirements.lock (what CI tested). Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
dpkg -s postgresql-15-postgis-3 >/dev/null 2>&1 || need_apt+=(postgresql-15 postgresql-15-postgis-3)
dpkg -s gdal-bin >/dev/null 2>&1 || need_apt+=(gdal-bin)  # gdalinfo: the GDAL check on cubes
dpkg -s chromium >/dev/null 2>&1 || need_apt+=(chromium)  # the viewer's browser test (Playwright)
if [ "${#need_apt[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing ${need_apt[*]} (apt)" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.cubestac-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ requirements.lock -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade "pip>=24"
  # the lock is a constraints file: every package the project and its test extras need is
  # installed at the version CI tested (scripts/lock.sh refreshes it)
  .venv/bin/python -m pip install -q -c requirements.lock -e ".[test]"
  touch "$stamp"
fi
