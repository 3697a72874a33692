#!/usr/bin/env python
"""Exact GELU against its tanh approximation in the GPT core: the same quality, faster sampling?

Sampling runs the GPT core in numpy (``generators/_lm/_infer.py``). There the exact GELU's erf
took more time than the MLP's two matrix products, while the tanh approximation (GPT-2's own
``gelu_new``) is a third of the cost. This checks that switching a new model's activation costs
nothing in what the model learns, and measures what it gains in sampling speed.

For every table of ``benchmarks/small_data.py`` (pbc, gbsg, Pima.tr, nafld1, nhefs; all training
rows of the seeded 80/20 split, Pima tested on Pima.te) and every seed, tabular-lm is fitted
twice with its defaults, once per activation, everything else equal (same seed, same split,
same validation rows, one torch thread). Per fit:

* ``val_nll``: the best validation loss per token (the training record's);
* ``epochs``: epochs run before early stopping;
* ``tstr_auc``: TSTR AUC of 1,000 synthetic rows on the real holdout;
* ``detection_auc``, ``dcr_median_ratio``, ``mia_auc``: as ``small_data.py`` scores them, on
  as many synthetic rows as training rows;
* ``rows_per_s``: 5,000 rows sampled in this process (one thread), after a warm-up sample.

    OMP_NUM_THREADS=1 python benchmarks/activation.py --out benchmarks/out/activation \
        --seeds 0 1 2 3 4 --workers 2

The paired difference (tanh − exact) of each figure over all (table, seed) pairs is the result:
``OUT/results.json`` and ``OUT/summary.md``. A finished (table, seed) file is not rerun.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from small_data import BIG, DATASETS, score, split, tstr_big  # noqa: E402

ACTIVATIONS = ("gelu", "gelu_new")
SPEED_ROWS = 5000


def one_fit(name: str, seed: int, activation: str) -> dict[str, Any]:
    """Fit with ``activation``, then score and time the sample."""
    import torch

    from healthsynth.generators._lm import _model
    from healthsynth.generators.tabular_lm import TabularLM

    torch.set_num_threads(1)
    _model.ACTIVATION = activation
    train, hold, schema = split(name, "all", seed)
    gen = TabularLM(seed=seed, epochs=None).fit(train, schema=schema)
    rec = gen.training_record_
    assert gen.model_.config.activation_function == activation
    syn = gen.sample(len(train), seed=seed + 100)
    out = score(train, syn, hold, schema, seed)
    out = {k: out[k] for k in ("tstr_auc", "detection_auc", "dcr_median_ratio", "mia_auc")}
    out["tstr_auc_big"] = tstr_big(gen.sample(BIG, seed=seed + 200), hold, schema, seed)
    gen.sample(500, seed=1)  # warm-up
    t0 = time.perf_counter()
    gen.sample(SPEED_ROWS, seed=seed + 300)
    out["rows_per_s"] = SPEED_ROWS / (time.perf_counter() - t0)
    out["val_nll"] = rec["best_val_nll_per_token"]
    out["epochs"] = rec["epochs_run"]
    out["fit_s"] = rec["fit_seconds"]
    return out


def run_pair(args: tuple[str, int, str]) -> str:
    name, seed, out = args
    path = Path(out) / "cells" / f"{name}-s{seed}.json"
    if path.exists():
        return f"{path.name}: kept"
    warnings.simplefilter("ignore")
    res = {"dataset": name, "seed": seed}
    for act in ACTIVATIONS:
        res[act] = one_fit(name, seed, act)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=1), encoding="utf-8")
    tmp.replace(path)
    return f"{path.name}: done"


def report(out: Path) -> str:
    rows = []
    for f in sorted((out / "cells").glob("*.json")):
        r = json.loads(f.read_text(encoding="utf-8"))
        for act in ACTIVATIONS:
            rows.append({"dataset": r["dataset"], "seed": r["seed"], "act": act, **r[act]})
    df = pd.DataFrame(rows)
    metrics = [c for c in df.columns if c not in ("dataset", "seed", "act")]
    wide = df.pivot_table(index=["dataset", "seed"], columns="act", values=metrics)
    lines = [
        "# Exact GELU (`gelu`) against the tanh approximation (`gelu_new`)",
        "",
        f"{df[['dataset', 'seed']].drop_duplicates().shape[0]} (table, seed) pairs. Mean ± sd "
        "over seeds per table; last row: the paired difference tanh − exact over all pairs.",
        "",
        "| table | " + " | ".join(metrics) + " |",
        "|---|" + "---|" * len(metrics),
    ]
    for ds, g in df.groupby("dataset"):
        for act in ACTIVATIONS:
            h = g[g["act"] == act]
            cells = [f"{h[m].mean():.3f} ± {h[m].std():.3f}" for m in metrics]
            lines.append(f"| {ds} {act} | " + " | ".join(cells) + " |")
    diff = {m: wide[m]["gelu_new"] - wide[m]["gelu"] for m in metrics}
    cells = [f"{d.mean():+.3f} ± {d.std():.3f}" for d in diff.values()]
    lines.append("| **paired tanh − exact** | " + " | ".join(cells) + " |")
    ratio = wide["rows_per_s"]["gelu_new"] / wide["rows_per_s"]["gelu"]
    lines += ["", f"Sampling speed ratio tanh / exact: {ratio.mean():.2f} ± {ratio.std():.2f}."]
    summary = {
        "pairs": int(len(wide)),
        "paired_mean": {m: float(d.mean()) for m, d in diff.items()},
        "paired_sd": {m: float(d.std()) for m, d in diff.items()},
        "speed_ratio": float(ratio.mean()),
    }
    (out / "results.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text, encoding="utf-8")
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    jobs = [(d, s, str(args.out)) for s in args.seeds for d in args.datasets]
    with ProcessPoolExecutor(args.workers) as pool:
        for msg in pool.map(run_pair, jobs):
            print(msg, flush=True)
    print(report(args.out))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
