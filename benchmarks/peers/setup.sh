#!/usr/bin/env bash
# Create the virtual environment for the *peer* generators used by the benchmark
# (REaLTabFormer, SDV GaussianCopula / CTGAN). These are benchmark-only tools:
# none of them is, or may become, a healthsynth dependency.
#
# Usage:  bash benchmarks/peers/setup.sh          (from anywhere)
#         PEERS_VENV=/some/path bash benchmarks/peers/setup.sh
#         FORCE=1 bash benchmarks/peers/setup.sh   (reinstall even if the venv works)
#
# Idempotent: if the venv already imports every peer at the pinned versions it
# does nothing. The exact versions installed are written to
# $PEERS_VENV/peers-versions.txt (and the full `pip freeze` next to it).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${PEERS_VENV:-.venv-peers}"
case "$VENV" in /*) ;; *) VENV="$REPO_ROOT/$VENV" ;; esac
PYTHON="${PYTHON:-python3.11}"

# Pins. torch MUST be pinned: an unpinned torch resolves to a multi-GB CUDA
# build; 2.13.0 has a CPU wheel in pip's configured find-links on this machine.
TORCH_PIN="torch==2.13.0"
RTF_PIN="realtabformer==0.2.4"
# realtabformer 0.2.4 breaks with transformers 5.x.
TRANSFORMERS_PIN="transformers==4.57.6"
HUB_PIN="huggingface-hub<1"
SDV_PIN="sdv>=2,<3"

check() {
  [ -x "$VENV/bin/python" ] || return 1
  "$VENV/bin/python" - <<'PY' >/dev/null 2>&1
import os
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch, transformers, realtabformer, sdv
from importlib.metadata import version
assert version("torch").startswith("2.13.0"), version("torch")
assert version("realtabformer") == "0.2.4"
assert version("transformers") == "4.57.6"
assert int(version("huggingface-hub").split(".")[0]) < 1
assert int(version("sdv").split(".")[0]) == 2
from sdv.single_table import GaussianCopulaSynthesizer, CTGANSynthesizer
from realtabformer import REaLTabFormer
PY
}

record_versions() {
  "$VENV/bin/python" - "$VENV/peers-versions.txt" <<'PY'
import sys, platform
from importlib.metadata import version
names = ["torch", "realtabformer", "transformers", "huggingface-hub", "datasets",
         "accelerate", "sdv", "ctgan", "copulas", "rdt", "pandas", "numpy",
         "scikit-learn", "scipy"]
lines = [f"python=={platform.python_version()}"]
for n in names:
    try:
        lines.append(f"{n}=={version(n)}")
    except Exception:
        lines.append(f"{n} (not installed)")
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
  "$VENV/bin/python" -m pip freeze > "$VENV/pip-freeze.txt"
}

if [ "${FORCE:-0}" != "1" ] && check; then
  echo "peers venv at $VENV already works; nothing to do."
  cat "$VENV/peers-versions.txt" 2>/dev/null || record_versions
  exit 0
fi

# Refuse to fall through to PyPI's torch (a CUDA build of several GB): the CPU
# wheel must be in pip's find-links, or TORCH_INDEX_URL must name a CPU index.
TORCH_EXTRA=()
if [ -n "${TORCH_INDEX_URL:-}" ]; then
  TORCH_EXTRA=(--index-url "$TORCH_INDEX_URL")
else
  links="${PIP_FIND_LINKS:-} $("$PYTHON" -m pip config list 2>/dev/null | sed -n "s/^[a-z:.]*find-links='\(.*\)'$/\1/p" | tr '\n' ' ')"
  found=""
  for d in $links; do
    d="${d#file://}"
    if ls "$d"/torch-2.13.0+cpu-*.whl >/dev/null 2>&1; then found="$d"; break; fi
  done
  if [ -z "$found" ]; then
    echo "ERROR: no torch-2.13.0+cpu wheel in pip's find-links ($links)." >&2
    echo "Set TORCH_INDEX_URL to a CPU wheel index, or PIP_FIND_LINKS to a folder holding the wheel." >&2
    exit 1
  fi
  echo "torch CPU wheel found in $found"
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
# Keep the venv out of git without touching the repo's .gitignore.
[ -f "$VENV/.gitignore" ] || echo '*' > "$VENV/.gitignore"
PIP=("$VENV/bin/python" -m pip install --no-input)

# 1. torch first, pinned (CPU wheel from find-links).
"${PIP[@]}" "${TORCH_EXTRA[@]}" "$TORCH_PIN"
# 2. REaLTabFormer with transformers 4.x; keep torch at the pin while resolving.
"${PIP[@]}" "$TORCH_PIN" "$RTF_PIN" "$TRANSFORMERS_PIN" "$HUB_PIN"
# 3. SDV 2.x (GaussianCopula, CTGAN); again keep the other pins fixed.
"${PIP[@]}" "$TORCH_PIN" "$TRANSFORMERS_PIN" "$HUB_PIN" "$RTF_PIN" "$SDV_PIN"

if ! check; then
  echo "ERROR: peers venv at $VENV does not import every peer at its pinned version" >&2
  exit 1
fi
record_versions
echo "peers venv ready: $VENV"
