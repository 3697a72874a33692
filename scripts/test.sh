#!/usr/bin/env bash
# Install what the tests need and run them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test
exec "${HEALTHSYNTH_VENV:-.venv}/bin/python" -m pytest "$@"
