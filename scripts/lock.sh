#!/usr/bin/env bash
# Refresh requirements.lock: resolve pyproject.toml's dependencies and test extras anew (the
# newest versions its lower bounds allow) for CPython 3.11 on x86_64 Linux. Commit the result
# on its own, after `bash scripts/test.sh` passed with it (setup.sh reinstalls from it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ -x .venv/bin/uv ] || .venv/bin/python -m pip install -q uv
.venv/bin/uv pip compile pyproject.toml --extra test --upgrade \
  --python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements.lock
