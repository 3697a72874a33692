#!/usr/bin/env python
"""Two checks of how tabular-lm's target is drawn, on the cells of ``benchmarks/small_data.py``.

``spread`` (no language model; a minute): the real training rows' targets redrawn from the
packaged label model (``auto``) fitted out of fold, five draws per cell, two ways: independent
uniform numbers per row, or a golden-ratio sequence from one random start along the rows
sorted by their probabilities (each row's value still has exactly its probabilities; rows with
similar probabilities share the classes out closer to the expected counts). Does a less noisy
draw of the same probabilities train a better model? TSTR AUC of each, and train-on-real.

``lm-vs-label`` (fits tabular-lm; about 20 minutes on 2 cores): per cell, the language model's
own log p(target | other columns) on its validation rows (target slots fed last) against the
label model's (fitted on the LM's training rows only), paired per row; and the TSTR AUC of rows
whose target the label model draws (the default) and of rows whose target the LM draws last.
Would choosing between them by held-out log-likelihood pay?

    python benchmarks/label_checks.py spread --out benchmarks/out/label-draws --sizes 50 150 500 all
    OMP_NUM_THREADS=1 python benchmarks/label_checks.py lm-vs-label \
        --out benchmarks/out/lm-vs-label --sizes 50 150 500 all

One JSON file per cell under ``OUT`` (a finished cell is not run again); ``--summary`` prints
the means (committed: docs/benchmark-results/small-data/label-draws, .../lm-vs-label).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from label_kind import out_of_fold_proba, relabel  # noqa: E402
from small_data import BIG, DATASETS, split, tstr_big  # noqa: E402

PHI = (np.sqrt(5) - 1) / 2


def _order(p: np.ndarray) -> np.ndarray:
    """Rows sorted by their class probabilities (by p(class 1), or the first principal axis)."""
    if p.shape[1] == 2:
        return np.argsort(p[:, 1], kind="stable")
    c = p - p.mean(0)
    return np.argsort(c @ np.linalg.svd(c, full_matrices=False)[2][0], kind="stable")


def _draw(p: np.ndarray, rng: np.random.Generator, how: str) -> np.ndarray:
    if how == "golden":  # one random start, then the sequence along the sorted rows
        u = np.empty(len(p))
        u[_order(p)] = (rng.random() + np.arange(len(p)) * PHI) % 1.0
    else:
        u = rng.random(len(p))
    return np.minimum((p.cumsum(axis=1) < u[:, None]).sum(axis=1), p.shape[1] - 1)


def spread_cell(name: str, size: int | str, seed: int, out: Path) -> None:
    from healthsynth.generators import _label_model as lm

    train, hold, schema = split(name, size, seed)
    if size != "all" and len(train) < int(size):
        return
    target = schema.target
    rows = train[train[target].notna()].reset_index(drop=True)
    _, codes, classes = lm.design_and_codes(rows, schema, lm.feature_states(rows, schema))
    p = out_of_fold_proba(rows, schema, codes, classes, kind="auto", seed=seed)
    res: dict = {"dataset": name, "size": size, "seed": seed}
    res["trtr"] = tstr_big(train, hold, schema, seed)
    for how in ("independent", "golden"):
        aucs = [
            tstr_big(
                relabel(rows, target, classes, _draw(p, np.random.default_rng([seed, d, 7]), how)),
                hold,
                schema,
                seed,
            )
            for d in range(5)
        ]
        res[how], res[how + "_sd"] = float(np.mean(aucs)), float(np.std(aucs))
    (out / f"{name}-n{size}-s{seed}.json").write_text(json.dumps(res))


def lm_target_log_p(gen, rows: pd.DataFrame) -> np.ndarray:  # noqa: ANN001
    """log p(target | other columns) of each row under the LM: its target slots fed last."""
    from healthsynth.generators._lm._infer import as_numpy
    from healthsynth.generators._lm._vocab import BOS
    from healthsynth.generators.tabular_lm._order import target_slots

    codec = gen.codec_
    local = codec.encode(rows.reset_index(drop=True), np.random.default_rng(0))
    last = set(target_slots(codec).tolist())
    order = [s for s in range(codec.n_slots) if s not in last] + sorted(last)
    m = len(local)
    dec = as_numpy(gen.model_).decoder(m, codec.n_slots + 1)
    ids, out = np.full((m, 1), BOS, np.int64), np.zeros(m)
    for s in order:
        lo, hi = int(codec.offset[s]), int(codec.offset[s] + codec.slot_size[s])
        h = dec.step(ids, np.full((m, 1), int(codec.marker[s]), np.int64))
        if s in last:
            lg = dec.logits(h, lo, hi).astype(np.float64)
            top = lg.max(1)
            out += lg[np.arange(m), local[:, s]] - np.log(np.exp(lg - top[:, None]).sum(1)) - top
        ids = (local[:, s] + lo)[:, None].astype(np.int64)
    return out


def lm_vs_label_cell(name: str, size: int | str, seed: int, out: Path) -> None:
    from healthsynth.generators._label_model import LabelModel
    from healthsynth.generators.tabular_lm import TabularLM

    train, hold, schema = split(name, size, seed)
    if size != "all" and len(train) < int(size):
        return
    target = schema.target
    gen = TabularLM(seed=seed, threads=1).fit(train, schema=schema)
    at = np.asarray(gen.validation_rows_)
    val = train.iloc[at]
    val = val[val[target].notna()]
    label = LabelModel.fit(train.drop(index=train.index[at]), schema, kind="auto", seed=seed)
    p = label.proba(val)
    idx = [label.classes.index(v) if v in label.classes else -1 for v in val[target]]
    label_lp = np.log(np.clip([p[i, j] if j >= 0 else 0 for i, j in enumerate(idx)], 1e-12, 1))
    d = lm_target_log_p(gen, val) - label_lp
    res: dict = {"dataset": name, "size": size, "seed": seed, "n_val": len(val)}
    res |= {"trtr": tstr_big(train, hold, schema, seed)}
    res |= {"diff_mean": float(d.mean()), "diff_se": float(d.std(ddof=1) / np.sqrt(len(d)))}
    n = len(train)
    res["tstr_label"] = tstr_big(gen.sample(n, seed=seed + 100), hold, schema, seed)
    res["big_label"] = tstr_big(gen.sample(BIG, seed=seed + 200), hold, schema, seed)
    gen.label_model_, gen.target_last = None, True  # the LM draws the target, last
    res["tstr_lm"] = tstr_big(gen.sample(n, seed=seed + 100), hold, schema, seed)
    res["big_lm"] = tstr_big(gen.sample(BIG, seed=seed + 200), hold, schema, seed)
    (out / f"{name}-n{size}-s{seed}.json").write_text(json.dumps(res))


def _cell(args: tuple) -> None:
    warnings.filterwarnings("ignore")
    check, name, size, seed, out = args
    (spread_cell if check == "spread" else lm_vs_label_cell)(name, size, seed, Path(out))
    print(check, name, size, seed, flush=True)


def summary(out: Path, check: str) -> None:
    cells = [json.loads(f.read_text()) for f in sorted(out.glob("*.json"))]
    for size in (50, 150, 500, "all"):
        rs = [r for r in cells if r["size"] == size]
        if not rs:
            continue
        if check == "spread":
            d = np.array([r["golden"] - r["independent"] for r in rs])
            mean = {k: np.mean([r[k] for r in rs]) for k in ("trtr", "independent", "golden")}
            print(
                f"{size}: {len(rs)} cells, train-on-real {mean['trtr']:.3f}, independent "
                f"{mean['independent']:.3f}, golden {mean['golden']:.3f}, paired "
                f"{d.mean():+.4f} ± {d.std(ddof=1):.4f}"
            )
            continue
        for z in (0, 1, 2):
            pick = np.array([r["diff_mean"] > z * r["diff_se"] for r in rs])
            lab, lmv = np.array([r["big_label"] for r in rs]), np.array([r["big_lm"] for r in rs])
            print(
                f"{size}: {len(rs)} cells, z={z}: LM chosen {pick.sum()}, TSTR (1,000 rows) "
                f"label {lab.mean():.3f}, LM {lmv.mean():.3f}, "
                f"rule {np.where(pick, lmv, lab).mean():.3f}"
            )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("check", choices=("spread", "lm-vs-label"))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--sizes", nargs="+", default=["50", "150", "500", "all"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--summary", action="store_true")
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    if not a.summary:
        sizes = [s if s == "all" else int(s) for s in a.sizes]
        jobs = [
            (a.check, n, s, seed, str(a.out))
            for s in sizes
            for n in DATASETS
            for seed in a.seeds
            if not (a.out / f"{n}-n{s}-s{seed}.json").exists()
        ]
        with ProcessPoolExecutor(a.workers) as pool:
            list(pool.map(_cell, jobs))
    summary(a.out, a.check)


if __name__ == "__main__":
    main()
