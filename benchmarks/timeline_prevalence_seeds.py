#!/usr/bin/env python
"""Benchmark: how item prevalence varies with the fit seed on a one-row-per-event cohort.

For each training configuration (``--config``, JSON keyword arguments of ``TimelineLM``; give
several), fits ``timeline-lm`` on all patients of the cohort with ``--fit-seeds`` seeds (one
torch thread each), samples as many patients as the cohort has with three sampling seeds, and
records the signed gap between synthetic and real prevalence (share of patients with the item)
of every item. The issue's target is every item within 0.03; the summary says in what share of
(fit seed, sample seed) pairs every item is within it, and the mean and standard deviation of
each item's gap. With ``--uncalibrated-too`` each fit is also sampled without its prevalence
calibration (the same weights, no offsets), a second row per configuration.

    .venv/bin/python benchmarks/timeline_prevalence_seeds.py --out /tmp/prev \\
        --config '{}' --config '{"patience": 10, "validation_fraction": 0.2, "epochs": 80}'
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np


def _prevalence(ds: Any) -> Any:
    """Share of patients with each item (``table/item``), a pandas Series."""
    ev = ds.events()
    label = (ev["table"] + "/" + ev["item"]).to_frame("label")
    return label.assign(k=ev[ds.key].to_numpy()).groupby("label")["k"].nunique() / ds.n_patients


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="mgus2")
    ap.add_argument("--config", action="append", required=True, help="TimelineLM kwargs, JSON")
    ap.add_argument("--fit-seeds", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=0, help="fit seeds start here")
    ap.add_argument("--target", type=float, default=0.03)
    ap.add_argument(
        "--uncalibrated-too",
        action="store_true",
        help="also sample each fit without its prevalence calibration (a second result row)",
    )
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    from healthsynth.data import load_timelines
    from healthsynth.generators.timeline_lm import TimelineLM

    ds = load_timelines(args.dataset, seed=0)
    real = _prevalence(ds)
    results = []
    for text in args.config:
        cfg = json.loads(text)
        variants: dict[str, list[dict[str, Any]]] = {"": []}
        if args.uncalibrated_too:
            variants[" uncalibrated"] = []
        for fit_seed in range(args.first_seed, args.first_seed + args.fit_seeds):
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                gen = TimelineLM(seed=fit_seed, threads=1, **cfg).fit(ds)
            fit_s = time.perf_counter() - t0
            calibration = gen.training_record_.get("calibration")
            for variant, runs in variants.items():
                if variant:  # the same weights without the offsets
                    gen.calibration_, gen.sampler_ = None, None
                for sample_seed in (1, 2, 3):
                    syn = gen.sample(ds.n_patients, seed=sample_seed)
                    gap = _prevalence(syn).reindex(real.index).fillna(0) - real
                    runs.append(
                        {
                            "fit_seed": fit_seed,
                            "sample_seed": sample_seed,
                            "fit_seconds": round(fit_s, 1),
                            "epochs_run": gen.training_record_.get("epochs_run"),
                            "calibration": None if variant else calibration,
                            "gap": {k: round(float(v), 4) for k, v in gap.items()},
                        }
                    )
                print(cfg, variant, fit_seed, [r["gap"] for r in runs[-3:]], flush=True)
        for variant, runs in variants.items():
            gaps = np.array([[r["gap"][k] for k in real.index] for r in runs])
            results.append(
                {
                    "config": cfg,
                    "variant": variant.strip() or "as fitted",
                    "runs": runs,
                    "within_target": round(float((np.abs(gaps) <= args.target).all(1).mean()), 3),
                    "gap_mean": dict(
                        zip(real.index, np.round(gaps.mean(0), 4).tolist(), strict=True)
                    ),
                    "gap_sd": dict(zip(real.index, np.round(gaps.std(0), 4).tolist(), strict=True)),
                }
            )
    out = {
        "dataset": args.dataset,
        "n_patients": ds.n_patients,
        "real_prevalence": {k: round(float(v), 4) for k, v in real.items()},
        "target": args.target,
        "load_average_at_end": os.getloadavg(),
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(out, indent=2) + "\n")
    lines = [
        f"# Prevalence over fit seeds: {args.dataset}, {ds.n_patients:,} patients",
        "",
        f"{args.fit_seeds} fit seeds (from {args.first_seed}) x 3 sample seeds per configuration; "
        "gap = synthetic - real "
        "share of patients with the item.",
        "",
        f"| configuration | all items within {args.target} | "
        + " | ".join(f"{k} gap mean (sd)" for k in real.index)
        + " |",
        "| --- | --- | " + " | ".join("---" for _ in real.index) + " |",
    ]
    for r in results:
        cells = [f"{r['gap_mean'][k]:+.3f} ({r['gap_sd'][k]:.3f})" for k in real.index]
        lines.append(
            f"| `{json.dumps(r['config'])}` {r['variant']} | {r['within_target']:.0%} | "
            + " | ".join(cells)
            + " |"
        )
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
