#!/usr/bin/env python
"""Ablation on a NAFLD subset: one fitted model, sampled under several decoding choices.

Fits ``timeline-lm`` once on the training part of a seeded NAFLD subset (``--max-patients``,
20 % holdout) under a wall-clock cap, then samples as many patients as it trained on for each
variant: the learned structure kept or not, and temperatures. For each variant it records
event-prevalence R², co-occurrence R², the train-on-synthetic AUC of the diabetes-within-two-
years task (train-on-real as reference), tokens per patient and patients per second. Sampling-
only variants share the model, so their differences are the decoding's alone. Writes
``results.json`` and ``summary.md`` into ``--out``.

    .venv/bin/python benchmarks/timeline_ablation.py --max-patients 2500 --max-time 300 \\
        --out docs/timeline-results/ablation
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path


def _scores(train, holdout, syn) -> dict[str, float | None]:
    from healthsynth.evaluate.timeline import cooccurrence, prevalence, tstr

    out: dict[str, float | None] = {}
    for name, mod, kw in (
        ("prevalence_r2", prevalence, {}),
        ("cooccurrence_r2", cooccurrence, {}),
        ("tstr_auc", tstr, {"task": {"item": "diabetes", "horizon_days": 730}}),
    ):
        recs = [r for r in mod.compute(real=train, synthetic=syn, holdout=holdout, **kw)]
        main = next(r for r in recs if r.subgroup is None)
        out[name] = None if main.value is None else round(float(main.value), 4)
        if name == "tstr_auc":
            out["trtr_auc"] = None if main.reference is None else round(float(main.reference), 4)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-patients", type=int, default=2500)
    ap.add_argument("--max-time", type=float, default=300.0)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--temperatures", default="1.0,0.9")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--joint-values", action="store_true", help="joint (item, value) tokens")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    from healthsynth.data import load_timelines
    from healthsynth.generators.timeline_lm import TimelineLM
    from healthsynth.generators.timeline_lm._structure import Structure

    ds = load_timelines("nafld", max_patients=args.max_patients, seed=args.seed)
    train, holdout = ds.split(holdout=0.2, seed=args.seed)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gen = TimelineLM(
            epochs=args.epochs,
            max_time=args.max_time,
            seed=args.seed,
            threads=args.threads,
            joint_values=args.joint_values,
        ).fit(train, code_map="nafld")
    fit_s = time.perf_counter() - t0
    rec = gen.training_record_
    learned = gen.structure_
    variants = []
    for temp in [float(t) for t in args.temperatures.split(",")]:
        for kept in (True, False):
            gen.structure_ = learned if kept else Structure(learned.names)
            gen.sampler_ = None
            gen.temperature = temp
            t = time.perf_counter()
            syn = gen.sample(train.n_patients, seed=1)
            secs = time.perf_counter() - t
            ev = syn.events()
            once = ev[ev["item"].isin(["diabetes", "dyslipidemia", "htn", "nafld"])]
            variants.append(
                {
                    "temperature": temp,
                    "structure": "kept" if kept else "not kept",
                    "patients_per_second": round(train.n_patients / secs, 1),
                    "events_per_patient": round(len(ev) / syn.n_patients, 2),
                    "repeats_of_once_only": int(once.duplicated([syn.key, "item"]).sum()),
                    **_scores(train, holdout, syn),
                }
            )
            print(variants[-1], flush=True)
    out = {
        "n_train": train.n_patients,
        "n_holdout": holdout.n_patients,
        "fit_seconds": round(fit_s, 1),
        "epochs_run": rec.get("epochs_run"),
        "stop_reason": rec.get("stop_reason"),
        "tokens_per_patient_mean": rec.get("tokens_per_patient_mean"),
        "joint_values": args.joint_values,
        "best_val_nll_per_token": rec.get("best_val_nll_per_token"),
        # per patient (approximately: the mean length of all patients, not the validation's)
        "best_val_nll_per_patient": round(
            float(rec["best_val_nll_per_token"]) * float(rec["tokens_per_patient_mean"]), 2
        )
        if rec.get("best_val_nll_per_token") is not None
        else None,
        "history": rec.get("history"),
        "structure": rec["structure"],
        "load_average_at_end": os.getloadavg(),
        "variants": variants,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(out, indent=2) + "\n")
    lines = [
        f"# Decoding ablation on NAFLD: {train.n_patients:,} training, {holdout.n_patients:,} "
        "holdout patients",
        "",
        f"One model ({'joint' if args.joint_values else 'separate'} item and value tokens): "
        f"fit {fit_s:.0f} s ({rec.get('epochs_run')} epochs, stopped by "
        f"{rec.get('stop_reason')}), {rec.get('tokens_per_patient_mean')} tokens per patient, "
        f"best validation loss {rec.get('best_val_nll_per_token')} nats per token "
        f"({out['best_val_nll_per_patient']} per patient); "
        f"load average at the end {os.getloadavg()[0]:.1f} on 2 cores.",
        "",
        "| temperature | structure | prevalence R² | co-occurrence R² | TSTR AUC (TRTR) | "
        "repeats of once-only diagnoses | events/patient | patients/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for v in variants:
        lines.append(
            f"| {v['temperature']} | {v['structure']} | {v['prevalence_r2']} | "
            f"{v['cooccurrence_r2']} | {v['tstr_auc']} ({v['trtr_auc']}) | "
            f"{v['repeats_of_once_only']} | {v['events_per_patient']} | "
            f"{v['patients_per_second']} |"
        )
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
