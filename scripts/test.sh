#!/usr/bin/env bash
# The test command: set up what is missing, then run the whole suite on a real PostGIS
# (TEST_DATABASE_URL, else testcontainers when Docker answers, else a throwaway local cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
