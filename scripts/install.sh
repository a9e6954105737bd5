#!/usr/bin/env bash
# Create .venv (if missing) and install the locked dependencies plus this project.
# Sourced by scripts/demo.sh and scripts/test.sh; safe to rerun (pip skips what is installed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --disable-pip-version-check -r requirements.lock
if [ "${METACLIP_WITH_MODE:-0}" = "1" ]; then  # the optional MoDE group (torch, faiss, ...)
  python -m pip install -q --disable-pip-version-check -r requirements-mode.lock
fi
python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
