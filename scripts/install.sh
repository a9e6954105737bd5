#!/usr/bin/env bash
# Create .venv (if missing) and install the locked dependencies plus this project.
# Sourced by scripts/demo.sh (runtime only) and scripts/test.sh (METACLIP_WITH_DEV=1: the test
# and lint tools too); safe to rerun (pip skips what is installed).
#   requirements.lock        the runtime: what `pip install .` needs
#   requirements-build.lock  the build backend (setuptools) for the editable install below
#   requirements-dev.lock    requirements.lock + pytest, ruff, moto, hadolint, ... (METACLIP_WITH_DEV=1)
#   requirements-mode.lock   the optional MoDE group: torch, faiss, ... (METACLIP_WITH_MODE=1)
#   requirements-worldwide.lock  the optional worldwide group: word segmenters (METACLIP_WITH_WORLDWIDE=1)
#   requirements-online.lock the optional online group: webdataset, img2dataset (METACLIP_WITH_ONLINE=1)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
locks=(-r requirements.lock -r requirements-build.lock)
if [ "${METACLIP_WITH_DEV:-0}" = "1" ]; then
  locks+=(-r requirements-dev.lock)
fi
python -m pip install -q --disable-pip-version-check "${locks[@]}"
if [ "${METACLIP_WITH_MODE:-0}" = "1" ]; then  # the optional MoDE group (torch, faiss, ...)
  python -m pip install -q --disable-pip-version-check -r requirements-mode.lock
fi
if [ "${METACLIP_WITH_ONLINE:-0}" = "1" ]; then  # the optional online group (webdataset, img2dataset)
  # --no-deps: the lock is the whole closure, less img2dataset's `dataclasses` backport
  python -m pip install -q --disable-pip-version-check --no-deps -r requirements-online.lock
fi
if [ "${METACLIP_WITH_WORLDWIDE:-0}" = "1" ]; then  # the optional worldwide group (segmenters)
  python -m pip install -q --disable-pip-version-check -r requirements-worldwide.lock
fi
python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
