#!/usr/bin/env python
"""Fit tabular-lm on a training CSV and sample from it, in its own process (clean timing/memory).

Same interface and record fields as ``peers/run_peer.py``::

    .venv/bin/python benchmarks/run_healthsynth_cell.py --train train.csv --n 1000 \
        --out synth.csv --seed 0 --record record.json [--schema schema.json] [--max-time S]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--train", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--record", required=True)
    p.add_argument("--schema")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-time", type=float)
    p.add_argument("--epochs", type=int)
    p.add_argument("--model-dir")
    a = p.parse_args()

    import warnings

    warnings.simplefilter("ignore", FutureWarning)
    from healthsynth.data import Schema, read_table
    from healthsynth.generators._folder import runtime_info
    from healthsynth.generators.tabular_lm import TabularLM

    train = read_table(a.train)
    schema = Schema.load(a.schema) if a.schema else None
    gen = TabularLM(seed=a.seed, max_time=a.max_time, epochs=a.epochs)
    t0 = time.perf_counter()
    gen.fit(train, schema=schema)
    fit_s = time.perf_counter() - t0
    rss_fit = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if a.model_dir:
        gen.save(a.model_dir)
    t0 = time.perf_counter()
    if a.n > 50_000:
        gen.sample_to_file(a.n, a.out, seed=a.seed)
    else:
        synth = gen.sample(a.n, seed=a.seed)
        synth.to_csv(a.out, index=False)
    sample_s = time.perf_counter() - t0
    # throughput at a size where batching pays off (the benchmark's n can be a few hundred)
    t0 = time.perf_counter()
    gen.sample(10_000, seed=a.seed + 1)
    rows_per_s_10k = 10_000 / (time.perf_counter() - t0)
    rec = gen.training_record_
    record = {
        "method": "tabular-lm",
        "status": "ok",
        "fit_seconds": round(fit_s, 3),
        "fit_cpu_seconds": rec.get("fit_cpu_seconds"),
        "torch_threads": rec.get("torch_threads"),
        "torch_threads_reason": rec.get("torch_threads_reason"),
        "sample_seconds": round(sample_s, 3),
        "rows_per_s": round(a.n / sample_s, 1),
        "rows_per_s_10k": round(rows_per_s_10k, 1),
        "peak_rss_mb_fit": round(rss_fit, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "epochs_completed": rec["epochs_run"],
        "best_epoch": rec["best_epoch"],
        "stop_reason": rec["stop_reason"],
        "n_parameters": rec["n_parameters"],
        "n_train_rows": len(train),
        "n_columns": train.shape[1],
        "settings": rec["params"],
        "runtime": runtime_info(),
    }
    Path(a.record).write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
