#!/usr/bin/env python
"""Small-data ablation of tabular-lm: one fit per cell, many sampling-time variants scored.

For every (dataset, training size, seed) cell the harness splits the data as the benchmark
does (a seeded 80/20 split; Pima.tr is tested on Pima.te), takes the first ``size`` rows of a
seeded order (smaller training sets are subsets of larger ones), fits each *fit setting* of
tabular-lm once (fixed epochs rule, never a time budget, so the results do not depend on the
machine's load) and scores several *sampling variants* drawn from that one fitted model:

* ``lm``      — tabular-lm's default sampling (columns in schema order);
* ``ylast``   — the other columns first, the target last from the model's own p(y | x);
* ``label``   — the ``ylast`` rows with the target redrawn from a classifier fitted on the
  real training rows (the "label model": it uses the real rows, so its privacy cost is shown);
* ``mix``     — half of the ``ylast`` rows relabelled that way (a 50/50 mixture of the two
  p(y | x));
* ``curated`` — twice as many ``ylast`` rows, filtered by the Data-IQ/CLLM curation (also a
  model of the real rows), the first ``n`` kept.

The Bayesian network and the Gaussian copula run on the same cells, and the real training
rows give the train-on-real reference. Every synthetic table has as many rows as the training
set (the benchmark's ``synthetic_rows: same``). Scores: TSTR AUC (the ``tstr`` metric's model,
no bootstrap), detection AUC, DCR median ratio, exact-copy rate, distance membership-inference
AUC, and attribute inference of the sensitive column and of the target.

    OMP_NUM_THREADS=1 python benchmarks/small_data.py run --out benchmarks/out/small \
        --seeds 0 1 2 3 4 --workers 2
    python benchmarks/small_data.py report --out benchmarks/out/small

``run`` writes one JSON file per cell under ``OUT/cells`` (a finished cell is not run again)
and ``report`` gathers them into ``OUT/results.json`` and ``OUT/results.md`` (mean ± sd over
seeds, and each variant's difference from ``lm`` paired by seed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: name -> loading spec (the benchmark configs' drops, targets and sensitive columns)
DATASETS: dict[str, dict[str, Any]] = {
    "pbc": {"source": "survival/pbc", "drop": ["id"], "target": "status", "sensitive": ["sex"]},
    "gbsg": {"source": "survival/gbsg", "drop": ["pid"], "target": "status", "sensitive": ["meno"]},
    "pima": {
        "source": "MASS/Pima.tr",
        "holdout_source": "MASS/Pima.te",
        "target": "type",
        "sensitive": ["age"],
    },
    "nafld1": {
        "source": "survival/nafld1",
        "drop": ["id", "case.id"],
        "target": "status",
        "sensitive": ["male"],
        "max_rows": 2500,
    },
    "nhefs": {
        "source": "causaldata/nhefs",
        "target": "death",
        "sensitive": ["race"],
        "columns": [
            "death", "qsmk", "sbp", "dbp", "sex", "age", "race", "income", "marital", "school",
            "wt71", "smokeintensity", "smokeyrs", "asthma", "bronch", "hbp", "diabetes",
            "exercise", "active", "cholesterol",
        ],
    },
}  # fmt: skip

#: fit settings of tabular-lm: label -> constructor parameters
FITS: dict[str, dict[str, Any]] = {
    "base": {},
    "aware": {"target_share": 0.3},
}
#: fit settings run only at 50 rows (after they showed no gain there; fits are the slow part)
SMALL_ONLY = ("aware",)
#: rows of the second, large synthetic table of every variant: its TSTR AUC
#: (``tstr_auc_big``) has no sampling noise to speak of, so it measures the generator rather
#: than the luck of drawing ``n`` rows
BIG = 1000
#: from this training size on, only the ``lm``, ``ylast`` and ``label`` variants are scored and
#: no large table is drawn (the tables have ``n`` >= 500 rows already; it halves a cell's time)
LIGHT_FROM = 500
VARIANTS = ("lm", "ylast", "label", "mix", "curated")
BASELINES = ("bayesian-network", "gaussian-copula")


# -- data -------------------------------------------------------------------------------------
def load(name: str) -> tuple[pd.DataFrame, pd.DataFrame | None, Any]:
    """All rows (and a fixed holdout, for Pima), and the schema inferred from all of them."""
    from healthsynth.data import infer_schema, load_dataset

    spec = DATASETS[name]
    df = load_dataset(spec["source"])
    hold = load_dataset(spec["holdout_source"]) if "holdout_source" in spec else None
    for key, fn in (("columns", lambda d, c: d[c]), ("drop", lambda d, c: d.drop(columns=c))):
        if key in spec:
            df = fn(df, spec[key])
            hold = fn(hold, spec[key]) if hold is not None else None
    if "max_rows" in spec and len(df) > spec["max_rows"]:
        df = df.sample(spec["max_rows"], random_state=0).reset_index(drop=True)
    both = df if hold is None else pd.concat([df, hold], ignore_index=True)
    schema = infer_schema(both, target=spec["target"], sensitive=spec["sensitive"], source=name)
    return df, hold, schema


def split(name: str, size: int | str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, Any]:
    """Training rows (``size`` of a seeded order), holdout rows, schema."""
    from healthsynth.data import train_holdout_split

    df, hold, schema = load(name)
    if hold is None:
        train_all, hold = train_holdout_split(df, holdout=0.2, seed=seed)
    else:
        train_all = df
    n = len(train_all) if size == "all" else min(int(size), len(train_all))
    order = np.random.default_rng(seed + 7919).permutation(len(train_all))[:n]
    train = train_all.iloc[np.sort(order)].reset_index(drop=True)
    return train, hold.reset_index(drop=True), schema


# -- the label model ----------------------------------------------------------------------------
def _design(frames: list[pd.DataFrame], schema: Any, target: str) -> list[np.ndarray]:
    """One-hot categories, standardised numbers with missing indicators (scaled on frame 0)."""
    cols: list[list[np.ndarray]] = [[] for _ in frames]
    for c in schema.modelled:
        if c.name == target:
            continue
        if c.kind in ("categorical", "boolean"):
            for cat in c.categories or []:
                for out, f in zip(cols, frames, strict=True):
                    out.append((f[c.name] == cat).to_numpy(float))
            continue
        vals = []
        for f in frames:
            s = f[c.name]
            if c.kind == "datetime":
                s = (pd.to_datetime(s, errors="coerce") - pd.Timestamp("1970-01-01")).dt.days
            vals.append(pd.to_numeric(s, errors="coerce").to_numpy(float))
        ref = vals[0][np.isfinite(vals[0])]
        mu, sd = (ref.mean(), ref.std() or 1.0) if len(ref) else (0.0, 1.0)
        for out, v in zip(cols, vals, strict=True):
            miss = ~np.isfinite(v)
            out.append(np.where(miss, 0.0, (v - mu) / sd))
            out.append(miss.astype(float))
    pairs = zip(cols, frames, strict=True)
    return [np.column_stack(c) if c else np.zeros((len(f), 0)) for c, f in pairs]


def relabel(
    real: pd.DataFrame, rows: pd.DataFrame, schema: Any, *, share: float, seed: int
) -> pd.DataFrame:
    """``rows`` with the target of a ``share`` of them drawn from p(y | x) of a classifier.

    The classifier is an L2 logistic regression on the real rows (one-hot categories,
    standardised numbers, missing indicators).
    """
    from sklearn.linear_model import LogisticRegression

    target = schema.target
    lab = real[real[target].notna()]
    xr, xs = _design([lab, rows], schema, target)
    clf = LogisticRegression(C=1.0, max_iter=2000)
    clf.fit(xr, lab[target].astype(str).to_numpy())
    proba = clf.predict_proba(xs)
    rng = np.random.default_rng(seed)
    u = rng.random(len(rows))[:, None]
    pick = (proba.cumsum(axis=1) < u).sum(axis=1).clip(0, proba.shape[1] - 1)
    by_name = {str(v): v for v in lab[target].unique()}
    drawn = pd.Series([by_name[str(c)] for c in clf.classes_[pick]], index=rows.index)
    out = rows.copy()
    change = rng.random(len(rows)) < share
    out.loc[change, target] = drawn[change].astype(out[target].dtype, errors="ignore")
    return out


# -- scoring ------------------------------------------------------------------------------------
def tstr_big(syn: pd.DataFrame, hold: pd.DataFrame, schema: Any, seed: int) -> float:
    """TSTR AUC of a large synthetic table."""
    from healthsynth.evaluate.utility.tstr import fit_predict
    from healthsynth.evaluate.utility.tstr import score as tstr_score

    p = fit_predict(syn, hold, schema, seed=seed)
    return 0.5 if p.single_class else tstr_score(p, "auc")


def score(
    train: pd.DataFrame, syn: pd.DataFrame, hold: pd.DataFrame, schema: Any, seed: int
) -> dict[str, float]:
    """The figures of one synthetic table (no bootstrap intervals: the seeds give the spread)."""
    from healthsynth.data import infer_schema
    from healthsynth.evaluate.fidelity.detection import detection_auc
    from healthsynth.evaluate.privacy import attribute, dcr, membership
    from healthsynth.evaluate.utility.tstr import fit_predict
    from healthsynth.evaluate.utility.tstr import score as tstr_score

    out: dict[str, float] = {}
    p = fit_predict(syn, hold, schema, seed=seed)
    out["tstr_auc"] = 0.5 if p.single_class else tstr_score(p, "auc")
    out["target_classes"] = float(syn[schema.target].nunique())
    out["detection_auc"] = detection_auc(train, syn, schema, seed=seed, n_boot=0)[0]
    for r in dcr.compute(real=train, synthetic=syn, holdout=hold, schema=schema, seed=seed):
        if r.name in ("dcr_median_ratio", "exact_copy_rate"):
            out[r.name] = r.value
            if r.name == "exact_copy_rate":
                out["exact_copy_rate_holdout"] = r.reference
    for r in membership.compute(real=train, synthetic=syn, holdout=hold, schema=schema, seed=seed):
        if r.subgroup == "distance":
            out["mia_auc"] = r.value
    sens = list(schema.sensitive)
    for label, cols in (("ai_sensitive", sens), ("ai_target", [schema.target])):
        if not cols:
            continue
        s2 = infer_schema(
            pd.concat([train, hold], ignore_index=True), target=schema.target, sensitive=cols
        )
        recs = attribute.compute(real=train, synthetic=syn, holdout=hold, schema=s2, seed=seed)
        vals = [r for r in recs if r.value is not None]
        if vals:
            out[label] = vals[0].value
            out[label + "_holdout"] = vals[0].reference
    return {k: float(v) for k, v in out.items() if v is not None}


# -- one cell -----------------------------------------------------------------------------------
def run_cell(name: str, size: int | str, seed: int, out: Path) -> None:
    path = out / "cells" / f"{name}-n{size}-s{seed}.json"
    if path.exists():
        return
    from healthsynth.generators import registry
    from healthsynth.generators._curate import curate
    from healthsynth.generators.tabular_lm import TabularLM

    warnings.filterwarnings("ignore")
    train, hold, schema = split(name, size, seed)
    if size != "all" and len(train) < int(size):
        print(f"{name} n={size}: the table has fewer training rows; skipped", flush=True)
        return
    n = len(train)
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    ref = score(train, train, hold, schema, seed)
    rows.append({"method": "train-on-real", **ref, "tstr_auc_big": ref["tstr_auc"]})
    # (at the light sizes the big figure of train-on-real is still its own TSTR AUC)
    for base in BASELINES:
        t = time.perf_counter()
        g = registry.get(base)(seed=seed).fit(train, schema=schema)
        syn = g.sample(n, seed=seed)
        big = {}
        if size == 50 or (size != "all" and int(size) < LIGHT_FROM):
            big["tstr_auc_big"] = tstr_big(g.sample(BIG, seed=seed + 1000), hold, schema, seed)
        rows.append({"method": base, "fit_seconds": time.perf_counter() - t,
                     **score(train, syn, hold, schema, seed), **big})  # fmt: skip
    for fit, params in FITS.items():
        if fit in SMALL_ONLY and (size == "all" or int(size) > 50):
            continue
        t = time.perf_counter()
        gen = TabularLM(seed=seed, threads=1, **params).fit(train, schema=schema)
        rec = gen.training_record_
        info = {
            "fit_seconds": time.perf_counter() - t,
            "epochs_run": rec["epochs_run"],
            "best_epoch": rec["best_epoch"],
            "stop_reason": rec["stop_reason"],
        }
        gen.target_last = False
        lm = gen.sample(n, seed=seed)
        gen.target_last = True
        ylast2 = gen.sample(2 * n, seed=seed)
        ylast = ylast2.iloc[:n].reset_index(drop=True)
        tables = {
            "lm": lm,
            "ylast": ylast,
            "label": relabel(train, ylast, schema, share=1.0, seed=seed),
        }
        light = size != 50 and (size == "all" or int(size) >= LIGHT_FROM)
        if not light:
            kept = curate(real=train, synthetic=ylast2, schema=schema, seed=seed).keep
            tables["mix"] = relabel(train, ylast, schema, share=0.5, seed=seed)
            tables["curated"] = ylast2.loc[kept].iloc[:n].reset_index(drop=True)
        big = {} if light else _big_tables(gen, train, schema, seed)
        for variant, syn in tables.items():
            extra = {"tstr_auc_big": tstr_big(big[variant], hold, schema, seed)} if big else {}
            rows.append({"method": f"tabular-lm:{fit}:{variant}", **info,
                         "rows": len(syn), **score(train, syn, hold, schema, seed),
                         **extra})  # fmt: skip
    payload = {
        "dataset": name,
        "size": size,
        "seed": seed,
        "train_rows": n,
        "holdout_rows": len(hold),
        "seconds": time.perf_counter() - t0,
        "results": rows,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, path)
    print(f"{name} n={size} seed={seed}: {payload['seconds']:.0f} s", flush=True)


def _big_tables(gen: Any, train: pd.DataFrame, schema: Any, seed: int) -> dict[str, pd.DataFrame]:
    """The variants again with ``BIG`` rows each (other sampling seeds)."""
    from healthsynth.generators._curate import curate

    gen.target_last = False
    lm = gen.sample(BIG, seed=seed + 1000)
    gen.target_last = True
    y2 = gen.sample(2 * BIG, seed=seed + 1000)
    y = y2.iloc[:BIG].reset_index(drop=True)
    kept = curate(real=train, synthetic=y2, schema=schema, seed=seed).keep
    return {
        "lm": lm,
        "ylast": y,
        "label": relabel(train, y, schema, share=1.0, seed=seed + 1000),
        "mix": relabel(train, y, schema, share=0.5, seed=seed + 1000),
        "curated": y2.loc[kept].iloc[:BIG].reset_index(drop=True),
    }


def _worker(args: tuple[str, int | str, int, str]) -> str | None:
    name, size, seed, out = args
    try:
        run_cell(name, size, seed, Path(out))
    except Exception as e:  # noqa: BLE001 - one failed cell must not end the run
        import traceback

        msg = f"{name} n={size} seed={seed} FAILED: {e}"
        (Path(out) / "cells").mkdir(parents=True, exist_ok=True)
        (Path(out) / "cells" / f"{name}-n{size}-s{seed}.error").write_text(traceback.format_exc())
        print(msg, flush=True)
        return msg
    return None


# -- report -------------------------------------------------------------------------------------
METRICS = ("tstr_auc", "tstr_auc_big", "detection_auc", "dcr_median_ratio", "exact_copy_rate",
           "exact_copy_rate_holdout", "mia_auc", "ai_target", "ai_target_holdout",
           "ai_sensitive")  # fmt: skip


def gather(out: Path) -> pd.DataFrame:
    recs = []
    for p in sorted((out / "cells").glob("*.json")):
        cell = json.loads(p.read_text())
        for r in cell["results"]:
            recs.append({"dataset": cell["dataset"], "size": str(cell["size"]),
                         "seed": cell["seed"], "train_rows": cell["train_rows"], **r})  # fmt: skip
    return pd.DataFrame(recs)


def report(out: Path) -> None:
    df = gather(out)
    if df.empty:
        sys.exit(f"no finished cells under {out / 'cells'}")
    sizes = ["50", "150", "500", "all"]
    lines = ["# tabular-lm small-data ablation", ""]
    summary: dict[str, Any] = {}
    for metric in METRICS:
        if metric not in df:
            continue
        lines += [f"## {metric} (mean ± sd over seeds; n = seeds)", ""]
        lines += ["| dataset | size | " + " | ".join(_methods(df)) + " |"]
        lines += ["|---|---|" + "---|" * len(_methods(df))]
        for ds in DATASETS:
            for size in sizes:
                part = df[(df.dataset == ds) & (df["size"] == size)]
                if part.empty:
                    continue
                cells = []
                for m in _methods(df):
                    v = part.loc[part.method == m, metric].dropna()
                    cells.append(f"{v.mean():.3f} ± {v.std():.3f} ({len(v)})" if len(v) else "–")
                    summary.setdefault(metric, {}).setdefault(ds, {}).setdefault(size, {})[m] = (
                        {"mean": float(v.mean()), "sd": float(v.std()), "n": len(v)}
                        if len(v)
                        else None
                    )
                lines.append(f"| {ds} | {size} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += _paired(df, "tstr_auc") + _paired(df, "tstr_auc_big") + _averages(df)
    lines += _label_summary(df) + _targets(df)
    (out / "results.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps(summary, indent=1))
    print("\n".join(lines))


def _averages(df: pd.DataFrame) -> list[str]:
    """Per size, every metric's mean over the datasets' seed means (one line per method)."""
    cols = [m for m in METRICS if m in df]
    per = df.groupby(["size", "dataset", "method"])[cols].mean()
    lines = ["## Means over datasets (each dataset's seed mean, then their mean)", ""]
    for size in ["50", "150", "500", "all"]:
        if size not in per.index.get_level_values("size"):
            continue
        part = per.loc[size].groupby(level="method").mean()
        n = per.loc[size].index.get_level_values("dataset").nunique()
        lines += [f"### size {size} ({n} datasets)", ""]
        lines += ["| method | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        for m in _methods(df):
            if m in part.index:
                vals = " | ".join(f"{part.loc[m, c]:.3f}" for c in cols)
                lines.append(f"| {m} | {vals} |")
        lines.append("")
    return lines


#: the label model as shipped (tabular-lm's default on small tables) and the LM alone
LABEL, LM = "tabular-lm:base:label", "tabular-lm:base:lm"


def _label_summary(df: pd.DataFrame) -> list[str]:
    """Per size, the label model's figures next to the LM alone, the baselines and real rows
    (mean over datasets of each dataset's seed mean), with the cells behind each mean."""
    cols = ["tstr_auc", "tstr_auc_big", "detection_auc", "dcr_median_ratio", "mia_auc",
            "ai_target", "ai_target_holdout"]  # fmt: skip
    names = {"train-on-real": "train-on-real", **{b: b for b in BASELINES},
             LM: "tabular-lm alone", LABEL: "tabular-lm + label model"}  # fmt: skip
    lines = ["## Label model summary (mean over datasets; cells = dataset × seed)", ""]
    lines += ["| size | method | " + " | ".join(cols) + " | datasets | cells |"]
    lines += ["|---|---|" + "---|" * (len(cols) + 2)]
    for size in ["50", "150", "500", "all"]:
        part = df[df["size"] == size]
        for m, label in names.items():
            sub = part[part.method == m]
            if sub.empty:
                continue
            per = sub.groupby("dataset")[[c for c in cols if c in sub]].mean().mean()
            vals = " | ".join(f"{per[c]:.3f}" if c in per and pd.notna(per[c]) else "–"
                              for c in cols)  # fmt: skip
            lines.append(f"| {size} | {label} | {vals} | {sub.dataset.nunique()} | {len(sub)} |")
    return [*lines, ""]


def _targets(df: pd.DataFrame) -> list[str]:
    """Issue 14's targets for the label model, per dataset and size (seed means)."""
    keep = ["tstr_auc", "detection_auc", "dcr_median_ratio", "exact_copy_rate",
            "exact_copy_rate_holdout", "mia_auc"]  # fmt: skip
    means = df.groupby(["dataset", "size", "method"])[keep].mean()
    seeds = df[df.method == LABEL].groupby(["dataset", "size"]).seed.nunique()
    lines = ["## Issue 14's targets, label model (seed means per dataset and size)", ""]
    lines += [
        "Dominated by: a baseline with TSTR AUC and DCR ratio (capped at 1, as in the "
        "benchmark's privacy–utility frontier) both at least as good, one better.",
        "",
    ]
    lines += ["| dataset | size | seeds | TSTR | best baseline | TSTR − best | real | "
              "TSTR − real | detection (lowest baseline) | DCR ratio | copies (holdout) | "
              "dominated by |", "|---" * 12 + "|"]  # fmt: skip
    for ds in DATASETS:
        for size in ["50", "150", "500", "all"]:
            if (ds, size) not in seeds.index:
                continue
            m = means.loc[(ds, size)]
            lab, real = m.loc[LABEL], m.loc["train-on-real"]
            base = m.loc[[b for b in BASELINES if b in m.index]]
            best = base.tstr_auc.idxmax()
            # the benchmark's frontier: utility = TSTR AUC, privacy = DCR ratio capped at 1
            util, priv = base.tstr_auc, base.dcr_median_ratio.clip(upper=1)
            mine = (lab.tstr_auc, min(lab.dcr_median_ratio, 1.0))
            better = (util >= mine[0]) & (priv >= mine[1]) & ((util > mine[0]) | (priv > mine[1]))
            dom = list(base.index[better])
            lines.append(
                f"| {ds} | {size} | {seeds[(ds, size)]} | {lab.tstr_auc:.3f} | "
                f"{base.tstr_auc.max():.3f} ({best}) | {lab.tstr_auc - base.tstr_auc.max():+.3f} | "
                f"{real.tstr_auc:.3f} | {lab.tstr_auc - real.tstr_auc:+.3f} | "
                f"{lab.detection_auc:.3f} ({base.detection_auc.min():.3f}) | "
                f"{lab.dcr_median_ratio:.3f} | {lab.exact_copy_rate:.3f} "
                f"({lab.exact_copy_rate_holdout:.3f}) | {', '.join(dom) or 'none'} |"
            )
    return [*lines, ""]


def _methods(df: pd.DataFrame) -> list[str]:
    order = ["train-on-real", *BASELINES]
    rest = sorted(m for m in df.method.unique() if m not in order)
    return [m for m in order if m in set(df.method)] + rest


def _paired(df: pd.DataFrame, metric: str) -> list[str]:
    """``metric`` of each variant minus ``tabular-lm:base:lm``'s, paired by cell, and minus the
    best baseline's; mean ± sd over the (dataset, size, seed) cells of each size."""
    key = ["dataset", "size", "seed"]
    if metric not in df:
        return []
    piv = df.pivot_table(index=key, columns="method", values=metric)
    if "tabular-lm:base:lm" not in piv:
        return []
    best = piv[[b for b in BASELINES if b in piv]].max(axis=1)
    lines = [f"## {metric} difference, paired by cell (mean ± sd over dataset × seed cells)", ""]
    lines += ["| method | size | vs tabular-lm:base:lm | vs best baseline | cells |"]
    lines += ["|---|---|---|---|---|"]
    for m in [c for c in piv.columns if c.startswith("tabular-lm")]:
        for size in ["50", "150", "500", "all"]:
            sel = piv.index.get_level_values("size") == size
            d1 = (piv.loc[sel, m] - piv.loc[sel, "tabular-lm:base:lm"]).dropna()
            d2 = (piv.loc[sel, m] - best[sel]).dropna()
            if len(d1):
                lines.append(f"| {m} | {size} | {d1.mean():+.3f} ± {d1.std():.3f} | "
                             f"{d2.mean():+.3f} ± {d2.std():.3f} | {len(d1)} |")  # fmt: skip
    return [*lines, ""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=["run", "report"])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/small-data"))
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS))
    ap.add_argument("--sizes", nargs="+", default=["50", "150", "500", "all"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--workers", type=int, default=1, help="cells at once (each on 1 thread)")
    a = ap.parse_args()
    if a.command == "report":
        report(a.out)
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sizes = [s if s == "all" else int(s) for s in a.sizes]
    todo = [(d, s, seed, str(a.out)) for s in sizes for seed in a.seeds for d in a.datasets]
    if a.workers > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(a.workers, maxtasksperchild=4) as pool:
            failed = [m for m in pool.imap_unordered(_worker, todo) if m]
    else:
        failed = [m for m in map(_worker, todo) if m]
    print(f"done; {len(failed)} failed cells")


if __name__ == "__main__":
    main()
