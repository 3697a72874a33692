#!/usr/bin/env python
"""Benchmark: learned event-log structure on a one-row-per-event cohort (mgus2) or NAFLD.

Fits ``timeline-lm`` on the whole cohort (seeded), then samples as many patients as it has,
three times with different seeds, once with the learned structure kept while decoding and once
with the same model and no structure rules (``Structure`` emptied; the grammar, end of
follow-up and code-map masks stay). For each it counts events after a terminal item, repeats
of once-only items and events of an always-present item missing, and the largest gap between
synthetic and real item prevalence (share of patients with the item). Writes ``results.json``
and ``summary.md`` into ``--out``.

    .venv/bin/python benchmarks/timeline_structure.py --out docs/timeline-results/mgus2
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path


def _check(syn, structure, real_prev):
    ev = syn.events()
    labels = ev["table"] + "/" + ev["item"]
    ev = ev.assign(label=labels)
    once = set(structure["once"])
    terminal = set(structure["terminal"])
    repeats = int(((ev.groupby([syn.key, "label"]).cumcount() > 0) & ev["label"].isin(once)).sum())
    hit = ev["label"].isin(terminal).astype(int)
    after = int(((ev.assign(h=hit).groupby(syn.key)["h"].cumsum() - hit) > 0).sum())
    have = ev.groupby("label")[syn.key].nunique() / syn.n_patients
    missing_always = sum(
        int(syn.n_patients - ev.loc[ev["label"] == a, syn.key].nunique())
        for a in structure["always"]
    )
    diff = (have.reindex(real_prev.index).fillna(0) - real_prev).abs()
    return {
        "events_after_terminal": after,
        "repeats_of_once_only": repeats,
        "patients_missing_an_always_item": missing_always,
        "max_prevalence_gap": round(float(diff.max()), 4),
        "prevalence_gap": {k: round(float(v), 4) for k, v in diff.items()},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="mgus2", choices=["mgus2", "nafld", "pbcseq"])
    ap.add_argument("--max-patients", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--max-time", type=float, default=600.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--patience", type=int, default=3)
    ap.add_argument("--validation-fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    from healthsynth.data import load_timelines
    from healthsynth.generators.timeline_lm import TimelineLM
    from healthsynth.generators.timeline_lm._structure import Structure

    ds = load_timelines(args.dataset, max_patients=args.max_patients, seed=args.seed)
    ev = ds.events()
    real_prev = (ev["table"] + "/" + ev["item"]).to_frame("label").assign(
        k=ev[ds.key].to_numpy()
    ).groupby("label")["k"].nunique() / ds.n_patients
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gen = TimelineLM(
            epochs=args.epochs,
            max_time=args.max_time,
            seed=args.seed,
            threads=args.threads,
            patience=args.patience,
            validation_fraction=args.validation_fraction,
        ).fit(ds, code_map=args.dataset if args.dataset != "mgus2" else None)
    fit_s = time.perf_counter() - t0
    rec = gen.training_record_
    learned = gen.structure_
    structure = learned.to_dict()
    runs: dict[str, list] = {"kept": [], "not_kept": []}
    for label, rules in (("kept", learned), ("not_kept", Structure(learned.names))):
        gen.structure_, gen.sampler_ = rules, None
        for s in (1, 2, 3):
            t = time.perf_counter()
            syn = gen.sample(ds.n_patients, seed=s)
            runs[label].append(
                {
                    "seed": s,
                    "seconds": round(time.perf_counter() - t, 2),
                    **_check(syn, structure, real_prev),
                }
            )
    out = {
        "dataset": args.dataset,
        "n_patients": ds.n_patients,
        "n_events": int(len(ev)),
        "fit_seconds": round(fit_s, 1),
        "epochs_run": rec.get("epochs_run"),
        "stop_reason": rec.get("stop_reason"),
        "structure": rec["structure"],
        "death_event": rec["death_event"],
        "load_average_at_end": os.getloadavg(),
        "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(out, indent=2) + "\n")

    def listed(key: str) -> str:
        return ", ".join(structure[key]) or "none"

    lines = [
        f"# Learned structure on {args.dataset}: {ds.n_patients:,} patients, {len(ev):,} events",
        "",
        f"Fit {fit_s:.0f} s ({rec.get('epochs_run')} epochs, stopped by "
        f"{rec.get('stop_reason')}), load average at the end {os.getloadavg()[0]:.1f} on 2 "
        f"cores. Learned: once-only {listed('once')}; terminal {listed('terminal')}; always "
        f"{listed('always')}.",
        "",
        "| decoding | seed | events after a terminal item | repeats of once-only items | "
        "patients missing an always item | largest prevalence gap |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for label, rows in runs.items():
        for r in rows:
            lines.append(
                f"| structure {'kept' if label == 'kept' else 'not kept'} | {r['seed']} | "
                f"{r['events_after_terminal']} | {r['repeats_of_once_only']} | "
                f"{r['patients_missing_an_always_item']} | {r['max_prevalence_gap']:.3f} |"
            )
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
