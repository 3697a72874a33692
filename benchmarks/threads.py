#!/usr/bin/env python
"""Benchmark: how much a busy machine slows a tabular-lm fit down, in one run.

The same small fit (survival/colon, default model size, a fixed number of epochs, no privacy
checks, seed 0) runs in a fresh process twice per source tree: once on the machine as it is
("quiet"), once next to ``--busy`` processes that each spin one core in a Python loop (the
situation of issue 13: one other busy process on a 2-core machine). The ratio busy ÷ quiet is
the figure; the fits alternate (quiet, busy, quiet, busy, ...) so that drifting background load
hits both alike.

    .venv/bin/python benchmarks/threads.py --out benchmarks/out/threads \
        [--src new=src --src old=/path/to/old/src] [--repeats 2] [--epochs 6]

Each fit records its wall time and the training record's thread choice. Results:
``OUT/threads.json`` and a markdown table on stdout (the committed copy is
docs/benchmark-results/engine.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FIT = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
from healthsynth.data import load_dataset
from healthsynth.generators.tabular_lm import TabularLM
df = load_dataset("survival/colon")
t0 = time.perf_counter()
gen = TabularLM(epochs={epochs}, patience=1000, privacy_stop=False, seed=0).fit(df)
wall = time.perf_counter() - t0
rec = gen.training_record_
print(json.dumps({{"wall": wall, "threads": rec.get("torch_threads"),
    "reason": rec.get("torch_threads_reason"), "changes": rec.get("torch_threads_changes"),
    "epochs": rec["epochs_run"], "val": rec["best_val_nll_per_token"]}}))
"""


def spin() -> subprocess.Popen:
    """A process that keeps one core busy (a pure-Python loop) until killed."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def fit(src: Path, epochs: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1"}
    for var in ("OMP_NUM_THREADS", "HEALTHSYNTH_THREADS"):
        env.pop(var, None)
    out = subprocess.run(
        [sys.executable, "-c", FIT.format(epochs=epochs)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def load() -> float:
    return round(os.getloadavg()[0], 2)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "threads")
    p.add_argument("--src", action="append", default=None, help="NAME=PATH of a source tree")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--busy", type=int, default=1, help="busy processes next to the busy fit")
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    sources = dict(s.split("=", 1) for s in (a.src or [f"current={ROOT / 'src'}"]))
    runs: list[dict] = []
    for r in range(a.repeats):
        for name, src in sources.items():
            for busy in (0, a.busy):
                spinners = [spin() for _ in range(busy)]
                try:
                    time.sleep(0.5 if busy else 0)
                    before = load()
                    res = fit(Path(src), a.epochs)
                finally:
                    for s in spinners:
                        s.kill()
                        s.wait()
                run = {"source": name, "repeat": r, "busy": busy, "load_before": before, **res}
                runs.append(run)
                print(json.dumps(run), flush=True)
    summary = []
    for name in sources:
        quiet = [x["wall"] for x in runs if x["source"] == name and x["busy"] == 0]
        loaded = [x["wall"] for x in runs if x["source"] == name and x["busy"] > 0]
        q, b = statistics.median(quiet), statistics.median(loaded)
        summary.append(
            {
                "source": name,
                "quiet_s": round(q, 1),
                "busy_s": round(b, 1),
                "ratio": round(b / q, 2),
            }
        )
    result = {
        "cpu_count": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "epochs": a.epochs,
        "busy_processes": a.busy,
        "runs": runs,
        "summary": summary,
    }
    (a.out / "threads.json").write_text(json.dumps(result, indent=1))
    lines = [
        f"| source | quiet fit (s) | fit next to {a.busy} busy process(es) (s) | ratio |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {s['source']} | {s['quiet_s']} | {s['busy_s']} | {s['ratio']}× |" for s in summary
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
