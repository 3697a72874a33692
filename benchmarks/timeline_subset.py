#!/usr/bin/env python
"""One timeline-lm fit on a seeded NAFLD subset with given settings, and what its sample shows.

Fits ``timeline-lm`` on the training part (80 %) of ``--max-patients`` NAFLD patients for a
fixed number of epochs (so that load on the machine changes the time, not the model), samples
as many patients as it trained on, and appends one JSON line to ``--out``: optimiser steps,
best validation loss, event-prevalence and co-occurrence R² against the training patients,
the share of patients with diabetes, events per patient and the median days between a
patient's last event and the end of follow-up (real and synthetic side by side).

    .venv/bin/python benchmarks/timeline_subset.py --set epochs=4 --set token_budget=12000 \\
        --label before --out docs/timeline-results/time-context-subset/results.jsonl
    .venv/bin/python benchmarks/timeline_subset.py --set epochs=4 --set token_budget=3000 \\
        --set time_context=false --label small-batches --out ...

Settings are ``TimelineLM`` parameters (``name=value``; numbers and true/false are parsed).
One seed per line: compare lines of several seeds before calling a difference real.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path


def _value(text: str) -> object:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(text)
    except ValueError:
        return float(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-patients", type=int, default=2500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], help="a TimelineLM setting name=value")
    ap.add_argument("--label", default="")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    settings = {k: _value(v) for k, v in (s.split("=", 1) for s in args.set)}

    import numpy as np

    from healthsynth.data import load_timelines
    from healthsynth.evaluate.timeline import cooccurrence, prevalence
    from healthsynth.evaluate.timeline._prepare import prepared
    from healthsynth.generators.timeline_lm import TimelineLM

    ds = load_timelines("nafld", max_patients=args.max_patients, seed=args.seed)
    train, holdout = ds.split(holdout=0.2, seed=args.seed)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gen = TimelineLM(seed=args.seed, threads=args.threads, **settings)
        gen.fit(train, code_map="nafld")
    fit_s = time.perf_counter() - t0
    rec = gen.training_record_
    t0 = time.perf_counter()
    syn = gen.sample(train.n_patients, seed=args.seed + 1)
    sample_s = time.perf_counter() - t0

    def headline(mod) -> float:
        recs = mod.compute(real=train, synthetic=syn, holdout=holdout)
        return round(float(next(r for r in recs if r.subgroup is None).value), 4)

    def shape(tl) -> dict[str, float]:
        ev = tl.events
        last = ev.groupby("p")["t"].max().reindex(range(tl.n)).to_numpy()
        return {
            "diabetes_share": round(ev[ev.label == "events/diabetes"].p.nunique() / tl.n, 3),
            "events_per_patient": round(len(ev) / tl.n, 2),
            "last_event_to_end_days": float(np.nanmedian(last - tl.end)),
        }

    out = {
        "label": args.label,
        "settings": settings,
        "patients": train.n_patients,
        "seed": args.seed,
        "fit_seconds": round(fit_s, 1),
        "sample_seconds": round(sample_s, 1),
        "steps": rec["steps"],
        "epochs": rec["epochs_run"],
        "best_val_nll_per_token": round(rec["best_val_nll_per_token"], 4),
        "event_prevalence_r2": headline(prevalence),
        "cooccurrence_r2": headline(cooccurrence),
        "synthetic": shape(prepared(syn)),
        "real": shape(prepared(train)),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(out))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a") as f:
        f.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
