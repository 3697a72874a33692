#!/usr/bin/env python
"""Learned column orders and sums on real registries: broken rows, gaps and cost, on and off.

For each table with dates or times that must come in order (or with a duration or change stored
next to what it spans), and each seed, this fits the packaged ``TabularLM`` once (its defaults,
one thread) and samples 2,000 rows twice from those weights with the same sampling seed: with the
learned orders and sums (``"learn"``, the default) and without them (``"off"``). Orders and
sums apply from the trained model on, so this is the same comparison as two fits that differ in
the two settings, without the spread of a second fit. It reports, per table and setting (mean ±
sd over the seeds):

* ``broken``: the share of sampled rows that break at least one of the learned orders
  (real rows: 0 by construction);
* ``broken_sums``: the share that break at least one learned sum (``fu.date = accept.dt +
  futime``; real rows: 0);
* ``gap_ks``: per learned order, the Kolmogorov–Smirnov distance between the real and the
  synthetic gap (``high - low``), averaged over the orders: does the later date sit at the right
  distance from the earlier one, not only on the right side;
* ``tie_gap``: per learned order, the difference between the real and the synthetic share of
  rows whose two values are equal (survival/mgus2: the progression time is the follow-up time
  in 92 % of rows), averaged;
* ``column_ks``: the KS distance of each column in an order or a sum, averaged (the columns
  themselves must not be distorted by keeping them);
* ``missing_gap``: the largest difference in missing share over those columns;
* ``sample_s``: seconds to sample the 2,000 rows (one thread).

    OMP_NUM_THREADS=1 python benchmarks/column_order.py --out benchmarks/out/column-order \
        --seeds 0 1 2 3 4 --workers 2

Writes one JSON file per (table, seed) under ``OUT/cells`` (a finished one is not rerun) and
``OUT/results.json`` and ``OUT/summary.md``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

#: Tables with orders (survival/jasa and MASS/Aids2: dates; the others: times), their targets.
TABLES = {
    "survival/jasa": "fustat",
    "MASS/Aids2": "status",
    "survival/mgus2": "death",
    "survival/heart": "event",
    "survival/cgd": "status",
    "causaldata/nhefs": "qsmk",
}
#: Columns kept of a wide table (nhefs has 67; these hold its weight change and smoking years).
COLUMNS = {
    "causaldata/nhefs": [
        "qsmk",
        "sex",
        "age",
        "race",
        "wt71",
        "wt82",
        "wt82_71",
        "smokeintensity",
        "smokeyrs",
        "education",
        "exercise",
        "active",
    ]
}
SAMPLE_ROWS = 2000
#: Training seconds per fit at most (the default schedule stops earlier on every table here).
MAX_TIME = 600.0


def _numbers(s: Any, kind: str) -> np.ndarray:
    from healthsynth.knowledge._orders import as_numbers as numbers

    return numbers(s, kind)


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import ks_2samp

    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    return float(ks_2samp(a, b).statistic) if len(a) and len(b) else float("nan")


def run_cell(name: str, seed: int, out: Path) -> None:
    path = out / "cells" / f"{name.replace('/', '-')}-s{seed}.json"
    if path.exists():
        return
    warnings.filterwarnings("ignore")
    from healthsynth.data import infer_schema, load_dataset
    from healthsynth.generators.tabular_lm import TabularLM
    from healthsynth.generators.tabular_lm._structure import relation_set
    from healthsynth.knowledge import OrderSet

    df = load_dataset(name)
    if name in COLUMNS:
        df = df[COLUMNS[name]]
    schema = infer_schema(df, target=TABLES[name])
    cell: dict[str, Any] = {"table": name, "seed": seed, "rows": len(df)}
    t0 = time.perf_counter()
    model = TabularLM(seed=seed, threads=1, max_time=MAX_TIME).fit(df, schema=schema)
    cell["fit_s"] = round(time.perf_counter() - t0, 2)
    cell["epochs_run"] = model.training_record_.get("epochs_run")
    orders, sums = model.column_orders_, relation_set(model)
    kept = (model.column_orders_, model.order_ties_, model.relations_)
    for mode in ("learn", "off"):
        if mode == "off":  # the same weights, sampled without the orders and sums
            model.column_orders_, model.order_ties_, model.relations_ = [], {}, []
        t0 = time.perf_counter()
        syn = model.sample(SAMPLE_ROWS, seed=seed + 100)
        sample_s = time.perf_counter() - t0
        broken = OrderSet(orders, schema).violations(syn).to_numpy().any(axis=1)
        broken_sums = (
            sums.violations(syn).to_numpy().any(axis=1) if sums is not None else np.zeros(1)
        )
        gaps, ties, cols, miss = [], [], {}, []
        for o in orders:
            kind = schema[o.low].kind
            real_gap = _numbers(df[o.high], kind) - _numbers(df[o.low], kind)
            syn_gap = _numbers(syn[o.high], kind) - _numbers(syn[o.low], kind)
            gaps.append(_ks(real_gap, syn_gap))
            ties.append(abs(float(np.mean(real_gap == 0)) - float(np.mean(syn_gap == 0))))
        involved = {c for o in orders for c in (o.low, o.high)}
        involved |= {c for r in (sums.relations if sums is not None else []) for c in r.columns}
        for c in sorted(involved):
            kind = schema[c].kind
            cols[c] = _ks(_numbers(df[c], kind), _numbers(syn[c], kind))
            miss.append(abs(float(df[c].isna().mean()) - float(syn[c].isna().mean())))
        cell[mode] = {
            "broken": float(broken.mean()),
            "broken_sums": float(broken_sums.mean()),
            "gap_ks": float(np.mean(gaps)) if gaps else float("nan"),
            "tie_gap": float(np.mean(ties)) if ties else float("nan"),
            "column_ks": float(np.mean(list(cols.values()))),
            "missing_gap": float(max(miss)),
            "sample_s": round(sample_s, 3),
        }
    model.column_orders_, model.order_ties_, model.relations_ = kept
    cell["ties"] = {f"{lo} <= {hi}": q for (lo, hi), q in model.order_ties_.items()}
    cell["orders"] = [o.describe() for o in orders or []]
    cell["sums"] = [r.describe() for r in (sums.relations if sums is not None else [])]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cell, indent=2))
    print(f"{name} seed {seed}: {cell['learn']} | off {cell['off']}", flush=True)


def report(out: Path) -> None:
    cells = [json.loads(p.read_text()) for p in sorted((out / "cells").glob("*.json"))]
    metrics = ("broken", "broken_sums", "gap_ks", "tie_gap", "column_ks", "missing_gap", "sample_s")
    rows, results = [], {}
    for name in TABLES:
        mine = [c for c in cells if c["table"] == name]
        if not mine:
            continue
        results[name] = {
            "seeds": len(mine),
            "fit_s": round(float(np.mean([c["fit_s"] for c in mine])), 1),
            "orders": mine[0]["orders"],
            "sums": mine[0].get("sums", []),
        }
        for mode in ("learn", "off"):
            stats = {}
            for m in metrics:
                v = np.array([c[mode][m] for c in mine], float)
                stats[m] = [round(float(v.mean()), 4), round(float(v.std(ddof=1)), 4)]
            results[name][mode] = stats
            cells_txt = " | ".join(f"{stats[m][0]:.3f} ± {stats[m][1]:.3f}" for m in metrics)
            rows.append(f"| {name} | {len(mine)} | {mode} | {cells_txt} |")
    (out / "results.json").write_text(json.dumps(results, indent=2))
    head = "| table | seeds | column_order | " + " | ".join(metrics) + " |"
    sep = "|---" * (3 + len(metrics)) + "|"
    text = "\n".join([head, sep, *rows])
    (out / "summary.md").write_text(text + "\n")
    print(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--tables", nargs="+", default=list(TABLES))
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    jobs = [(t, s) for t in args.tables for s in args.seeds]
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            list(pool.map(run_cell, *zip(*jobs, strict=True), [args.out] * len(jobs)))
    else:
        for t, s in jobs:
            run_cell(t, s, args.out)
    report(args.out)


if __name__ == "__main__":
    main()
