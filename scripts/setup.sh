#!/usr/bin/env bash
# Sets up a fresh clone: a virtual environment in .venv with the CPU torch wheel
# installed first (a newer torch would pull gigabytes of CUDA packages), then kjob.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[test]"
echo "kjob set up in .venv ($(.venv/bin/kjob --version))"
