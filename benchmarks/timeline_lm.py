#!/usr/bin/env python
"""Benchmark: ``timeline-lm`` on the full NAFLD cohort (or pbcseq), against the issue's targets.

Steps, all in one process on this machine:

1. load the cohort (``healthsynth.data.load_timelines``) and split it by patient into training
   and holdout (``--holdout``, seeded);
2. fit ``timeline-lm`` on the training patients with the cohort's code mapping, under a
   wall-clock cap (``--max-time``), and save it;
3. sample as many patients as were trained on (same shape), timing patients per second, plus
   a conditional cohort (``has=diabetes``, female, age 60-70) whose every patient is checked;
4. evaluate with ``healthsynth.evaluate.evaluate_timelines`` against the training and holdout
   patients (prediction task: diabetes within two years after the index date);
5. with ``--uncalibrated-too``, sample and evaluate the same model again without its
   prevalence calibration (same weights, same seed), a column of its own in the summary;
6. write ``results.json`` (every record, training and sampling records, targets),
   ``report.html`` and ``summary.md`` into ``--out``.

    .venv/bin/python benchmarks/timeline_lm.py --out docs/timeline-results/nafld
    .venv/bin/python benchmarks/timeline_lm.py --max-patients 2000 --max-time 300 --out /tmp/tl

Run it on a quiet machine: two heavy processes on two cores slow each other several-fold.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

TARGETS = {
    "event_prevalence_r2": (">=", 0.95),
    "cooccurrence_r2": (">=", 0.85),
    "timeline_violations": ("<=", 0.0),
    "timeline_dcr": (">=", 1.0),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="nafld", choices=["nafld", "pbcseq"])
    ap.add_argument("--max-patients", type=int, default=None)
    ap.add_argument("--holdout", type=float, default=0.2)
    ap.add_argument("--max-time", type=float, default=1500.0, help="training cap, seconds")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--task-item", default="diabetes")
    ap.add_argument("--joint-values", action="store_true", help="joint (item, value) tokens")
    ap.add_argument("--config", default="{}", help="other TimelineLM keyword arguments, JSON")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--model-out", type=Path, default=None, help="keep the model folder here")
    ap.add_argument(
        "--uncalibrated-too",
        action="store_true",
        help="also sample and evaluate the same model without its prevalence calibration",
    )
    args = ap.parse_args()

    import torch

    from healthsynth.data import load_timelines
    from healthsynth.evaluate import evaluate_timelines
    from healthsynth.generators.timeline_lm import TimelineLM
    from healthsynth.report import render_html

    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("default")
    load0 = os.getloadavg()
    ds = load_timelines(args.dataset, max_patients=args.max_patients, seed=args.seed)
    train, holdout = ds.split(holdout=args.holdout, seed=args.seed)
    print(f"{args.dataset}: {train.n_patients} training, {holdout.n_patients} holdout patients")

    gen = TimelineLM(
        epochs=args.epochs,
        max_time=args.max_time,
        seed=args.seed,
        joint_values=args.joint_values,
        verbose=sys.stderr.isatty(),
        **json.loads(args.config),
    )
    t0 = time.perf_counter()
    gen.fit(train, code_map=args.dataset)
    fit_s = time.perf_counter() - t0
    rec = gen.training_record_
    print(
        f"fit {fit_s:.0f} s, {rec['epochs_run']} epochs ({rec['stop_reason']}), "
        f"val nll {rec['best_val_nll_per_token']:.3f}, {rec['tokens_per_second']:.0f} tokens/s"
    )
    if args.model_out is not None:
        gen.save(args.model_out)
        gen = TimelineLM.load(args.model_out)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            gen.save(Path(tmp) / "model")
            gen = TimelineLM.load(Path(tmp) / "model")

    n = train.n_patients
    t0 = time.perf_counter()
    syn = gen.sample(n, seed=args.seed + 1)
    sample_s = time.perf_counter() - t0
    rate = n / sample_s
    print(f"sampled {n} patients in {sample_s:.1f} s ({rate:.0f} patients/s)")

    cond = {"has": args.task_item, "sex": "female", "age": "60..70"}
    if args.dataset != "nafld":
        cond = {"sex": "f"}
    t0 = time.perf_counter()
    cohort = gen.sample(500, conditions=cond, seed=args.seed + 2)
    cohort_s = time.perf_counter() - t0
    cp = cohort.patient_table
    cev = cohort.events()
    cohort_ok = {
        "patients": int(len(cp)),
        "seconds": round(cohort_s, 2),
        "sex_ok": bool((cp["sex"].astype(str).str[0].str.lower() == "f").all()),
    }
    if "age" in cond:
        cohort_ok["age_ok"] = bool(cp["age"].between(60, 70).all())
    if "has" in cond:
        with_item = cev.loc[cev["item"] == args.task_item, cohort.key].nunique()
        cohort_ok["has_item"] = int(with_item)
    print(f"conditional cohort {cond}: {cohort_ok}")

    sampling = {
        "n_rows": n,
        "seconds": round(sample_s, 3),
        "rows_per_second": round(rate, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    task = {"item": args.task_item, "horizon_days": 730} if args.dataset == "nafld" else None

    def evaluate(synthetic: object) -> dict:
        return evaluate_timelines(
            real=train,
            synthetic=synthetic,
            holdout=holdout,
            code_map=args.dataset,
            seed=args.seed,
            training=rec,
            sampling=sampling,
            task=task,
            sources={"real": f"{args.dataset} training", "holdout": f"{args.dataset} holdout"},
        )

    t0 = time.perf_counter()
    result = evaluate(syn)
    eval_s = time.perf_counter() - t0
    records = {r["name"]: r for r in result["records"] if r.get("subgroup") is None}
    uncalibrated = None
    if args.uncalibrated_too:  # the same weights, sampled without the calibration's offsets
        gen.calibration_, gen.sampler_ = None, None
        plain = evaluate(gen.sample(n, seed=args.seed + 1))
        uncalibrated = {
            r["name"]: r.get("value")
            for r in plain["records"]
            if r.get("subgroup") is None and r.get("status") == "ok"
        }

    def value(name: str) -> float | None:
        r = records.get(name)
        return None if r is None else r.get("value")

    checks = []
    for name, (op, goal) in TARGETS.items():
        v = value(name)
        ok = v is not None and (v >= goal if op == ">=" else v <= goal)
        checks.append({"target": f"{name} {op} {goal}", "value": v, "met": bool(ok)})
    tstr = records.get("timeline_tstr")
    if tstr is not None and tstr.get("value") is not None and tstr.get("reference") is not None:
        gap = tstr["reference"] - tstr["value"]
        checks.append(
            {"target": "TSTR AUC within 0.05 of train-on-real", "value": gap, "met": gap <= 0.05}
        )
    checks.append({"target": "fit <= 30 min", "value": round(fit_s, 1), "met": fit_s <= 1800})
    fit_mb = rec.get("peak_rss_mb")
    fits = fit_mb is not None and fit_mb <= 2000
    checks.append({"target": "fit peak <= 2 GB", "value": fit_mb, "met": fits})
    checks.append(
        {"target": "sampling >= 200 patients/s", "value": round(rate, 1), "met": rate >= 200}
    )
    summary = {
        "dataset": args.dataset,
        "config": json.loads(args.config),
        "train_patients": train.n_patients,
        "holdout_patients": holdout.n_patients,
        "fit_seconds": round(fit_s, 1),
        "sample_seconds": round(sample_s, 1),
        "patients_per_second": round(rate, 1),
        "evaluate_seconds": round(eval_s, 1),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_before": load0,
        "load_after": os.getloadavg(),
        "conditional_cohort": {"conditions": cond, **cohort_ok},
        "checks": checks,
        "training": rec,
        "sampling": sampling,
        "uncalibrated": uncalibrated,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(
        json.dumps({"summary": summary, "evaluation": result}, indent=1, default=str)
    )
    (args.out / "report.html").write_text(render_html(result), encoding="utf-8")
    lines = [
        f"# timeline-lm on {args.dataset}",
        "",
        f"{train.n_patients} training / {holdout.n_patients} holdout patients; fit "
        f"{fit_s:.0f} s ({rec['epochs_run']} epochs, stop: {rec['stop_reason']}); sampled "
        f"{n} patients in {sample_s:.0f} s ({rate:.0f}/s); {torch.get_num_threads()} torch "
        "threads.",
        "",
        "| target | value | met |",
        "| --- | --- | --- |",
    ]
    for c in checks:
        v = c["value"]
        lines.append(
            f"| {c['target']} | {v if not isinstance(v, float) else round(v, 4)} | "
            f"{'yes' if c['met'] else 'no'} |"
        )
    head = "| metric | synthetic | real holdout |"
    if uncalibrated is not None:
        head = "| metric | synthetic | real holdout | synthetic, uncalibrated |"
    lines += ["", head, "|" + " --- |" * (head.count("|") - 1)]
    for name, r in records.items():
        if r.get("status") != "ok":
            continue
        ref = r.get("reference")
        row = f"| {name} | {_fmt(r.get('value'))} | {_fmt(ref)} |"
        if uncalibrated is not None:
            row += f" {_fmt(uncalibrated.get(name))} |"
        lines.append(row)
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def _fmt(v: object) -> str:
    return "—" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
