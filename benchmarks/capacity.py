#!/usr/bin/env python
"""tabular-lm's capacity and dropout at small training sizes: does a smaller model help?

For every (dataset, size, seed) cell of ``benchmarks/small_data.py`` (the same splits), tabular-lm
is fitted three times with its defaults but for the model (``VARIANTS``: the default 96 × 3 with
dropout 0.2 below 1,000 rows; a 48 × 2 model; dropout 0.4), one thread each. Per fit: TSTR AUC
of as many sampled rows as training rows and of 1,000 rows, the DCR median ratio of the first
table, and the epochs run.

    OMP_NUM_THREADS=1 python benchmarks/capacity.py --out benchmarks/out/capacity --sizes 50 150

One JSON file per cell under ``OUT`` (a finished cell is not run again), then the mean of each
figure and each variant's paired difference from the default (committed:
docs/benchmark-results/small-data/capacity/).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from small_data import BIG, DATASETS, split, tstr_big  # noqa: E402

VARIANTS = {
    "default": {},
    "small": {"n_embd": 48, "n_layer": 2},
    "drop4": {"dropout": 0.4},
    "refit": {},  # the defaults, then trained again on every row (refit_on_all_rows)
}


def refit_on_all_rows(gen, train) -> None:
    """After an early-stopped fit, a fresh model on every row for the epochs the stop chose.

    The validation rows then only set the length of training (no early stopping and no
    privacy-aware stop: no rows are left out to judge by).
    """
    from healthsynth.generators._lm._fit import fit_model
    from healthsynth.generators._lm._threads import choose_threads
    from healthsynth.generators._lm._train import LastWeights
    from healthsynth.generators.tabular_lm._slot_model import TableObjective, build_model
    from healthsynth.generators.tabular_lm._training import train_settings

    rec, codec = gen.training_record_, gen.codec_
    rng = np.random.default_rng([gen.seed, 1])
    val = train.iloc[gen.validation_rows_].reset_index(drop=True)
    objective = TableObjective(
        codec,
        codec.encode(train.reset_index(drop=True), rng),
        codec.encode(val, rng),
        batch_size=rec["batch_size"],
        perm_prob=gen.perm_prob,
    )
    gen.model_ = build_model(
        codec,
        n_embd=gen.n_embd,
        n_layer=gen.n_layer,
        n_head=gen.n_head,
        dropout=rec["dropout"],
        seed=gen.seed + 1,
    )
    epochs = max(1, int(rec["best_epoch"]))
    settings = train_settings(gen, epochs, rec["learning_rate"], weight_decay=0.01, label="refit")
    threads = choose_threads(requested=1, work=1)
    gen.training_record_["refit"] = fit_model(
        gen.model_, objective, settings, threads=threads, checkpoint=LastWeights()
    )


def cell(args: tuple) -> None:
    name, size, seed, out, variants = args
    warnings.filterwarnings("ignore")
    from healthsynth.evaluate.privacy import dcr, membership
    from healthsynth.generators.tabular_lm import TabularLM

    train, hold, schema = split(name, size, seed)
    if size != "all" and len(train) < int(size):
        return
    res: dict = {"dataset": name, "size": size, "seed": seed}
    for v in variants:
        gen = TabularLM(seed=seed, threads=1, **VARIANTS[v]).fit(train, schema=schema)
        if v == "refit":
            refit_on_all_rows(gen, train)
        syn = gen.sample(len(train), seed=seed + 100)
        res[v] = tstr_big(syn, hold, schema, seed)
        res[v + "_big"] = tstr_big(gen.sample(BIG, seed=seed + 200), hold, schema, seed)
        for r in dcr.compute(real=train, synthetic=syn, holdout=hold, schema=schema, seed=seed):
            if r.name == "dcr_median_ratio":
                res[v + "_dcr"] = r.value
        for r in membership.compute(
            real=train, synthetic=syn, holdout=hold, schema=schema, seed=seed
        ):
            if r.subgroup == "distance":
                res[v + "_mia"] = r.value
        res[v + "_fit_seconds"] = gen.training_record_.get("fit_seconds")
        res[v + "_epochs"] = gen.training_record_.get("epochs_run")
    (Path(out) / f"{name}-n{size}-s{seed}.json").write_text(json.dumps(res))
    print(name, size, seed, flush=True)


def summary(out: Path) -> None:
    cells = [json.loads(f.read_text()) for f in sorted(out.glob("*.json"))]
    for size in sorted({c["size"] for c in cells}, key=str):
        rs = [c for c in cells if c["size"] == size]
        print(f"size {size}: {len(rs)} cells")
        for v in [v for v in VARIANTS if all(v in r for r in rs)]:
            for k in ("", "_big", "_dcr", "_mia"):
                if not all(v + k in r and "default" + k in r for r in rs):
                    continue
                a = np.array([r[v + k] for r in rs])
                d = a - np.array([r["default" + k] for r in rs])
                sd = d.std(ddof=1)
                print(f"  {v + k:12s} {a.mean():.3f}   − default {d.mean():+.4f} ± {sd:.4f}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--sizes", nargs="+", default=["50", "150"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--variants", nargs="+", default=["default", "small", "drop4"])
    a = p.parse_args()
    variants = ["default"] + [v for v in a.variants if v != "default"]
    a.out.mkdir(parents=True, exist_ok=True)
    sizes = [s if s == "all" else int(s) for s in a.sizes]
    jobs = [
        (n, s, seed, str(a.out), variants)
        for s in sizes
        for n in DATASETS
        for seed in a.seeds
        if not (a.out / f"{n}-n{s}-s{seed}.json").exists()
    ]
    with ProcessPoolExecutor(a.workers) as pool:
        list(pool.map(cell, jobs))
    summary(a.out)


if __name__ == "__main__":
    main()
