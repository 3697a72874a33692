#!/usr/bin/env python
"""Benchmark: one saved timeline-lm model, sampled with several seeds, with and without its
prevalence calibration.

One fit gives one set of weights; the figures of ``benchmarks/timeline_lm.py`` then still vary
from sample to sample (the prediction task of NAFLD has about 60 positive holdout patients).
This script loads a model folder that ``timeline_lm.py --model-out`` kept, rebuilds the same
training/holdout split (``--dataset``, ``--holdout``, ``--seed`` as there), and for each of
``--samples`` sampling seeds draws ``--patients`` patients twice: as saved (calibrated) and with
the calibration's offsets removed (the same weights). Each sample is scored by
``evaluate_timelines`` on the metrics that vary; the summary gives each metric's mean and
standard deviation per variant, and the paired difference.

    .venv/bin/python benchmarks/timeline_sample_seeds.py --model /tmp/nafld-model \\
        --samples 5 --out docs/timeline-results/nafld-calibration-samples

Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

METRICS = (
    "event_prevalence_r2",
    "cooccurrence_r2",
    "events_per_patient",
    "time_between_events",
    "timeline_tstr",
    "timeline_dcr",
    "timeline_violations",
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--dataset", default="nafld", choices=["nafld", "pbcseq"])
    ap.add_argument("--holdout", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--task-item", default="diabetes")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    from healthsynth.data import load_timelines
    from healthsynth.evaluate import evaluate_timelines
    from healthsynth.generators import load_generator

    warnings.simplefilter("ignore")
    ds = load_timelines(args.dataset, seed=args.seed)
    train, holdout = ds.split(holdout=args.holdout, seed=args.seed)
    task = {"item": args.task_item, "horizon_days": 730} if args.dataset == "nafld" else None
    gen = load_generator(args.model)
    calibration = gen.calibration_
    runs = []
    for s in range(args.samples):
        for variant in ("calibrated", "uncalibrated"):
            gen.calibration_ = calibration if variant == "calibrated" else None
            gen.sampler_ = None
            t0 = time.perf_counter()
            syn = gen.sample(args.patients, seed=1000 + s)
            sample_s = time.perf_counter() - t0
            result = evaluate_timelines(
                real=train,
                synthetic=syn,
                holdout=holdout,
                code_map=args.dataset,
                metrics=list(METRICS),
                seed=args.seed,
                task=task,
            )
            values = {
                r["name"]: r.get("value")
                for r in result["records"]
                if r.get("subgroup") is None and r["name"] in METRICS
            }
            refs = {
                r["name"]: r.get("reference")
                for r in result["records"]
                if r.get("subgroup") is None and r["name"] in METRICS
            }
            runs.append(
                {"sample_seed": 1000 + s, "variant": variant, "seconds": round(sample_s, 1)}
                | {"values": values, "references": refs}
            )
            print(s, variant, {k: _r(v) for k, v in values.items()}, flush=True)
    summary = {}
    for name in METRICS:
        per = {}
        for variant in ("calibrated", "uncalibrated"):
            v = [r["values"].get(name) for r in runs if r["variant"] == variant]
            v = np.array([np.nan if x is None else x for x in v], float)
            per[variant] = v
        diff = per["calibrated"] - per["uncalibrated"]
        summary[name] = {
            **{f"{k}_mean": _r(np.nanmean(v)) for k, v in per.items()},
            **{f"{k}_sd": _r(np.nanstd(v, ddof=1)) for k, v in per.items()},
            "paired_difference_mean": _r(np.nanmean(diff)),
            "paired_difference_sd": _r(np.nanstd(diff, ddof=1)),
            "reference": _r(runs[0]["references"].get(name)),
        }
    out = {
        "model": str(args.model),
        "dataset": args.dataset,
        "train_patients": train.n_patients,
        "holdout_patients": holdout.n_patients,
        "patients_per_sample": args.patients,
        "calibration": gen.training_record_.get("calibration")
        if hasattr(gen, "training_record_")
        else None,
        "load_after": os.getloadavg(),
        "summary": summary,
        "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(out, indent=1, default=str) + "\n")
    lines = [
        f"# {args.dataset}: one model, {args.samples} samples of {args.patients:,} patients",
        "",
        "| metric | calibrated, mean (sd) | uncalibrated, mean (sd) | paired difference, "
        "mean (sd) | real holdout |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, s in summary.items():
        lines.append(
            f"| {name} | {s['calibrated_mean']} ({s['calibrated_sd']}) | "
            f"{s['uncalibrated_mean']} ({s['uncalibrated_sd']}) | "
            f"{s['paired_difference_mean']} ({s['paired_difference_sd']}) | {s['reference']} |"
        )
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def _r(v: object) -> object:
    if v is None:
        return None
    f = float(v)  # type: ignore[arg-type]
    return None if not np.isfinite(f) else round(f, 4)


if __name__ == "__main__":
    raise SystemExit(main())
