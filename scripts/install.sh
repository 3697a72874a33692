#!/usr/bin/env bash
# Create .venv (if needed) and install healthsynth with the given extras into it.
# Usage: bash scripts/install.sh EXTRAS        e.g. bash scripts/install.sh datasets,test
# Torch is pinned to a CPU build first (TORCH_SPEC overrides), so pip never picks a multi-GB
# CUDA wheel to satisfy the unpinned requirement of a dependency.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-datasets}"
venv="${HEALTHSYNTH_VENV:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
py="$venv/bin/python"
"$py" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
# pip's notes about unusable local index folders are noise; real errors still show
quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
if ! "$py" -c "import torch" >/dev/null 2>&1; then
  quiet "$py" -m pip install --quiet "${TORCH_SPEC:-torch==2.13.0}"
fi
quiet "$py" -m pip install --quiet -e ".[${extras}]"
