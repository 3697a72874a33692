#!/usr/bin/env python
"""Read a finished ``data-efficiency`` benchmark: how many real rows each generator needs.

The packaged ``data-efficiency`` config fits every generator on 50, 100, 200, 500 and all
training rows of five real tables, five seeds each. This script reads the run's
``results.csv`` and writes ``OUT/data-efficiency.md`` (and ``.json``):

* **Utility by size.** Train-on-synthetic AUC on the real holdout (mean ± sd over seeds) per
  table, size and generator, next to train-on-real on the same training rows.
* **Signal kept.** ``(TSTR − 0.5) / (TRTR − 0.5)``: the share of the real rows' lift above
  chance that the synthetic rows carry, per cell, then averaged. A generator's data is called
  *worth training on* at a size where this mean reaches 0.9 (it keeps nine tenths of what the
  real rows teach); the report gives the smallest such size per table and generator.
* **The privacy–utility frontier at every size.** Per table and size, the generators that no
  other generator beats on both mean TSTR AUC and mean DCR ratio (capped at 1, as the
  benchmark's own frontier), and who dominates the others.
* **Fidelity and privacy by size.** Detection AUC (lower is better), DCR median ratio (≥ 0.95
  wanted), exact-copy rate against the holdout's, distance membership-inference AUC.

    python -m healthsynth benchmark data-efficiency -o benchmarks/out/data-efficiency
    python benchmarks/data_efficiency.py benchmarks/out/data-efficiency
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: The share of the real rows' lift above chance that makes a table "worth training on".
WORTH = 0.9
SIZES = ["50", "100", "200", "500", "all"]


def load(out: Path) -> pd.DataFrame:
    """One row per (table, size, generator, seed): the scores used here."""
    res = pd.read_csv(out / "results.csv", dtype={"train_size": str})
    res = res[res["status"].fillna("ok") == "ok"]
    mia = res["metric"].eq("membership_inference_auc") & res["subgroup"].eq("distance")
    res.loc[mia, "metric"] = "mia_auc"
    keep = ["tstr_auc", "detection_auc", "dcr_median_ratio", "exact_copy_rate", "mia_auc"]
    res = res[res["metric"].isin(keep)]
    key = ["dataset", "train_size", "train_rows", "generator", "seed"]
    wide = res.pivot_table(index=key, columns="metric", values="value").reset_index()
    refs = res[res["metric"].isin(["tstr_auc", "exact_copy_rate", "detection_auc"])]
    refs = refs.pivot_table(index=key, columns="metric", values="reference")
    refs.columns = [f"{c}_reference" for c in refs.columns]
    wide = wide.merge(refs.reset_index(), on=key, how="left")
    wide = wide.rename(columns={"tstr_auc_reference": "trtr_auc"})
    lift = wide["trtr_auc"] - 0.5
    wide["signal_kept"] = np.where(lift > 0.02, (wide["tstr_auc"] - 0.5) / lift, np.nan)
    return wide


def _order(sizes: Any) -> list[str]:
    return [s for s in SIZES if s in set(sizes)]


def _mean_sd(x: pd.Series, digits: int = 3) -> str:
    if x.notna().sum() == 0:
        return "–"
    if x.notna().sum() == 1:
        return f"{x.mean():.{digits}f}"
    return f"{x.mean():.{digits}f} ± {x.std():.{digits}f}"


def utility_tables(df: pd.DataFrame) -> list[str]:
    lines = []
    gens = sorted(df["generator"].unique())
    for ds, g in df.groupby("dataset"):
        sizes = _order(g["train_size"])
        rows = {s: int(g[g["train_size"] == s]["train_rows"].iloc[0]) for s in sizes}
        head = [f"n={s}" + (f" ({rows[s]})" if s == "all" else "") for s in sizes]
        lines += [f"### {ds}", "", "| generator | " + " | ".join(head) + " |"]
        lines.append("|---|" + "---|" * len(sizes))
        for gen in gens:
            cells = [_mean_sd(g[(g["generator"] == gen) & (g["train_size"] == s)]["tstr_auc"])
                     for s in sizes]  # fmt: skip
            lines.append(f"| {gen} | " + " | ".join(cells) + " |")
        real = [
            _mean_sd(g[g["train_size"] == s].drop_duplicates("seed")["trtr_auc"]) for s in sizes
        ]
        lines += ["| *train-on-real* | " + " | ".join(real) + " |", ""]
    return lines


def worth(df: pd.DataFrame) -> tuple[list[str], dict[str, Any]]:
    """The smallest size at which the mean signal kept reaches WORTH, per table and generator."""
    mean = df.groupby(["dataset", "generator", "train_size"])["signal_kept"].mean()
    found: dict[str, Any] = {}
    gens = sorted(df["generator"].unique())
    lines = ["| table | " + " | ".join(gens) + " |", "|---|" + "---|" * len(gens)]
    for ds, g in df.groupby("dataset"):
        cells = []
        for gen in gens:
            hit = None
            for s in _order(g["train_size"]):
                v = mean.get((ds, gen, s), np.nan)
                if np.isfinite(v) and v >= WORTH:
                    hit = s
                    break
            found.setdefault(ds, {})[gen] = hit
            cells.append("never" if hit is None else f"n={hit}")
        lines.append(f"| {ds} | " + " | ".join(cells) + " |")
    by_size = df.groupby(["generator", "train_size"])["signal_kept"].mean().unstack()
    by_size = by_size[_order(by_size.columns)]
    lines += [
        "",
        "Mean signal kept over tables (each cell first averaged over seeds):",
        "",
        "| generator | " + " | ".join(f"n={s}" for s in by_size.columns) + " |",
        "|---|" + "---|" * len(by_size.columns),
    ]
    per_table = df.groupby(["generator", "train_size", "dataset"])["signal_kept"].mean()
    per_table = per_table.groupby(["generator", "train_size"]).mean().unstack()
    for gen, r in per_table[by_size.columns].iterrows():
        lines.append(f"| {gen} | " + " | ".join(f"{v:.2f}" for v in r) + " |")
    return lines, found


def frontier(df: pd.DataFrame) -> tuple[list[str], dict[str, Any]]:
    """Per table and size: who is on the TSTR-AUC × capped-DCR frontier, who dominates whom."""
    m = df.assign(dcr=df["dcr_median_ratio"].clip(upper=1.0))
    m = m.groupby(["dataset", "train_size", "generator"])[["tstr_auc", "dcr"]].mean()
    lines = []
    out: dict[str, Any] = {}
    for (ds, size), g in m.groupby(level=[0, 1]):
        g = g.droplevel([0, 1])
        beaten: dict[str, list[str]] = {}
        for a, ra in g.iterrows():
            for b, rb in g.iterrows():
                if a == b:
                    continue
                if (
                    rb["tstr_auc"] >= ra["tstr_auc"]
                    and rb["dcr"] >= ra["dcr"]
                    and (rb["tstr_auc"] > ra["tstr_auc"] or rb["dcr"] > ra["dcr"])
                ):
                    beaten.setdefault(str(a), []).append(str(b))
        on = [str(x) for x in g.index if str(x) not in beaten]
        out[f"{ds}/{size}"] = {"frontier": on, "dominated": beaten}
        lost = "; ".join(f"{a} ({', '.join(b)})" for a, b in sorted(beaten.items()))
        lines.append(f"| {ds} | {size} | {', '.join(on)} | {lost} |")
    lines.sort(key=lambda x: (x.split("|")[1], _rank(x.split("|")[2].strip())))
    head = ["| table | size | on the frontier | dominated (by) |", "|---|---|---|---|"]
    return head + lines, out


def _rank(size: str) -> int:
    return SIZES.index(size) if size in SIZES else len(SIZES)


def by_size(df: pd.DataFrame, metric: str, digits: int = 3) -> list[str]:
    """Mean over tables (of the per-table means over seeds) per generator and size."""
    t = df.groupby(["generator", "train_size", "dataset"])[metric].mean()
    t = t.groupby(["generator", "train_size"]).mean().unstack()
    t = t[_order(t.columns)]
    lines = [
        "| generator | " + " | ".join(f"n={s}" for s in t.columns) + " |",
        "|---|" + "---|" * len(t.columns),
    ]
    for gen, r in t.iterrows():
        lines.append(f"| {gen} | " + " | ".join(f"{v:.{digits}f}" for v in r) + " |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path, help="the benchmark's output folder")
    args = ap.parse_args()
    if not (args.out / "results.csv").is_file():
        print(
            f"error: {args.out} has no results.csv; give the output folder of a finished "
            "'healthsynth benchmark data-efficiency' run",
            file=sys.stderr,
        )
        raise SystemExit(2)
    df = load(args.out)
    n_cells = df.groupby(["dataset", "train_size", "seed"]).ngroups
    worth_lines, worth_found = worth(df)
    front_lines, front = frontier(df)
    copies = df.assign(excess=df["exact_copy_rate"] - df["exact_copy_rate_reference"])
    text = [
        "# Data efficiency: how many real rows each generator needs",
        "",
        f"{n_cells} (table, size, seed) cells × {df['generator'].nunique()} generators, read "
        f"from `{args.out.name}/results.csv` by `benchmarks/data_efficiency.py`.",
        "",
        "## Smallest training size whose synthetic rows are worth training on",
        "",
        f"The mean over seeds of (TSTR − 0.5) / (TRTR − 0.5) reaches {WORTH}: the synthetic "
        "rows carry nine tenths of the real rows' lift above chance.",
        "",
        *worth_lines,
        "",
        "## Train-on-synthetic AUC by training size (mean ± sd over seeds)",
        "",
        *utility_tables(df),
        "## Privacy–utility frontier at every size",
        "",
        "Mean TSTR AUC against mean DCR median ratio capped at 1.",
        "",
        *front_lines,
        "",
        "## Detection AUC by size (lower: harder to tell from real rows)",
        "",
        *by_size(df, "detection_auc"),
        "",
        "## DCR median ratio by size (≥ 0.95 wanted)",
        "",
        *by_size(df, "dcr_median_ratio"),
        "",
        "## Distance membership-inference AUC by size (0.5: no signal)",
        "",
        *by_size(df, "mia_auc"),
        "",
        "## Exact copies of training rows above the holdout's rate, by size",
        "",
        *by_size(copies, "excess", 4),
        "",
    ]
    (args.out / "data-efficiency.md").write_text("\n".join(text), encoding="utf-8")
    summary = {"worth_training_on": worth_found, "frontier": front, "cells": n_cells}
    (args.out / "data-efficiency.json").write_text(json.dumps(summary, indent=1))
    print("\n".join(text))


if __name__ == "__main__":
    main()
