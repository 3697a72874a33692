#!/usr/bin/env bash
# Install what the demo needs and run it on a real health dataset (survival/nafld1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh datasets,privacy
exec "${HEALTHSYNTH_VENV:-.venv}/bin/healthsynth" demo "$@"
