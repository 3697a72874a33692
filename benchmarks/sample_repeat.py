#!/usr/bin/env python
"""Benchmark: one model sampled again and again in one process, with the threads it chose.

Each run samples ``--rows`` rows with a new seed and records its rows per second, the CPU
seconds per wall second (about 2 when two threads work, 1 when one does), and the thread
choice that ``choose_threads`` makes just before it (the same call the sampler makes). A run at
one thread's speed next to a choice of two threads is contention; a choice of one on a quiet
machine is a misread load.

    .venv/bin/python benchmarks/sample_repeat.py MODEL [--rows 20000] [--repeats 10] \\
        [--out benchmarks/out/sample_repeat.json]

Results: a JSON file and one line per run on stdout (committed figures:
docs/benchmark-results/engine.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from healthsynth.generators import load_generator
from healthsynth.generators._lm._infer import n_parameters
from healthsynth.generators._lm._threads import choose_threads


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("model", type=Path, help="a tabular-lm model folder")
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--out", type=Path, default=Path("benchmarks/out/sample_repeat.json"))
    a = p.parse_args()
    gen = load_generator(a.model)
    gen.sample(1_000, seed=0)  # warm: the allocator's thresholds, the thread pools
    work = n_parameters(gen.model_) * min(a.rows, gen.sample_batch_size)
    runs = []
    for r in range(a.repeats):
        choice = choose_threads(requested=gen.threads, work=work)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        gen.sample(a.rows, seed=r + 1)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        run = {
            "rows_per_second": round(a.rows / wall, 1),
            "cpu_per_wall": round(cpu / wall, 2),
            "threads_before": choice.n,
            "reason": choice.reason,
        }
        runs.append(run)
        print(json.dumps(run), flush=True)
    rates = [r["rows_per_second"] for r in runs]
    summary = {
        "model": str(a.model),
        "rows": a.rows,
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "median_rows_per_second": statistics.median(rates),
        "min_rows_per_second": min(rates),
        "runs": runs,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(summary, indent=1))
    print(f"median {summary['median_rows_per_second']:,.0f} rows/s, least {min(rates):,.0f}")


if __name__ == "__main__":
    main()
