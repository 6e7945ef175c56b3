#!/usr/bin/env bash
# Sets up a fresh clone: a virtual environment in .venv with the CPU torch wheel
# installed first (a newer torch would pull gigabytes of CUDA packages), then kjob.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# Debian packages the tests use: chromium (opens the evaluator's HTML report), 7zip (.7z test
# sets), espeak-ng (regenerates the demo data to prove it deterministic) and bubblewrap (runs
# see the real /kaggle paths in a private view; without it they are isolated by environment
# only). Skipped, with a note, without root.
missing=()
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v 7zz >/dev/null 2>&1 || command -v 7z >/dev/null 2>&1 || missing+=(7zip)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "note: ${missing[*]} not installed (needs root and apt-get); the tests that use them will be skipped"
  fi
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# This machine's pip configuration names a mirror folder that warns for every package; hide
# only those warnings.
quiet_pip() { .venv/bin/python -m pip install --quiet "$@" 2> >(grep -v "is ignored: it is neither" >&2); }
quiet_pip "torch==2.13.0"
quiet_pip -e ".[speech,test,ray,metrics]"  # every extra: this repository runs them all
echo "kjob set up in .venv ($(.venv/bin/kjob --version))"
