#!/usr/bin/env bash
# Install everything (with the test tools), lint, then run the whole test suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
METACLIP_WITH_MODE=1 source scripts/install.sh  # the tests cover the optional groups too
source scripts/env.sh
ruff check .
python -m pytest "$@"
