#!/usr/bin/env bash
# The main command: set up what is missing, then `cubestac demo` (embedded PostGIS, a demo
# world harvested and built into a Zarr cube, STAC API on http://127.0.0.1:8080).
# Extra arguments go to `cubestac demo` (--port, --files-port, --folder).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/cubestac demo "$@"
