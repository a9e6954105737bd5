#!/usr/bin/env bash
# Install everything (with the test tools), lint, then run the whole test suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# The test and lint tools (requirements-dev.lock); the tests cover the optional groups too.
METACLIP_WITH_DEV=1 METACLIP_WITH_MODE=1 METACLIP_WITH_WORLDWIDE=1 METACLIP_WITH_ONLINE=1 \
  source scripts/install.sh
source scripts/env.sh
ruff check .
python -m pytest "$@"
