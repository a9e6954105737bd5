#!/usr/bin/env bash
# Install everything, then curate the demo WAT files shipped in metaclip/demo_data (offline).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/install.sh
source scripts/env.sh
metaclip demo --output "${1:-demo-output}"
