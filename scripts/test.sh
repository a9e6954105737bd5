#!/usr/bin/env bash
# Install everything (with the test tools), lint, then run the whole test suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/install.sh
source scripts/env.sh
ruff check .
python -m pytest "$@"
