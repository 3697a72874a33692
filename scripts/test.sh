#!/usr/bin/env bash
# Install what the tests need and run them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test,privacy,baselines,baselines-bsl
# The report's browser test needs chromium; without it that test skips (outside CI, where
# HEALTHSYNTH_REQUIRE_BROWSER=1 turns the skip into a failure).
bash scripts/install-browser.sh || echo "install-browser: failed; the browser test will skip"
exec "${HEALTHSYNTH_VENV:-.venv}/bin/python" -m pytest "$@"
