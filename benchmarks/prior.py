#!/usr/bin/env python
"""Read a finished ``benchmarks/configs/prior.yaml`` run: what the prior changes, paired by seed.

For every table and training size, the difference ``tabular-lm-prior − tabular-lm`` of each
score on the same cells (same data, split and seed), as mean ± sd over seeds, and how many of
the seeds moved in the good direction. Scores: TSTR AUC on the real holdout (higher is
better), detection AUC (lower), DCR median ratio (≥ 0.95 wanted), distance membership-inference
AUC (lower), fit seconds. Writes ``OUT/prior.md`` and ``OUT/prior.json``.

    python benchmarks/prior.py benchmarks/out/prior-run
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_efficiency import load  # noqa: E402 - a sibling script

BASE, PRIOR = "tabular-lm", "tabular-lm-prior"
#: score -> +1 when higher is better, -1 when lower is better
SCORES = {"tstr_auc": 1, "detection_auc": -1, "dcr_median_ratio": 1, "mia_auc": -1}


def paired(wide: pd.DataFrame) -> pd.DataFrame:
    """One row per (table, size, seed): both generators' scores and their differences."""
    key = ["dataset", "train_size", "seed"]
    cols = [*SCORES, "trtr_auc"]
    a = wide[wide["generator"] == BASE].set_index(key)[cols]
    b = wide[wide["generator"] == PRIOR].set_index(key)[cols]
    both = a.join(b, lsuffix="_base", rsuffix="_prior", how="inner")
    for s in SCORES:
        both[f"{s}_diff"] = both[f"{s}_prior"] - both[f"{s}_base"]
    return both.reset_index()


def _ms(x: pd.Series) -> str:
    return f"{x.mean():+.3f} ± {x.std():.3f}" if len(x) > 1 else f"{x.mean():+.3f}"


def report(both: pd.DataFrame) -> tuple[list[str], dict]:
    lines = [
        "| table | rows | TSTR AUC base → prior | Δ TSTR (better/seeds) | Δ detection | "
        "Δ DCR ratio | Δ MIA AUC | train-on-real |",
        "|---|---|---|---|---|---|---|---|",
    ]
    out: dict = {}
    for (ds, size), g in both.groupby(["dataset", "train_size"], sort=True):
        better = int((g["tstr_auc_diff"] > 0).sum())
        lines.append(
            f"| {ds} | {size} | {g['tstr_auc_base'].mean():.3f} → {g['tstr_auc_prior'].mean():.3f}"
            f" | {_ms(g['tstr_auc_diff'])} ({better}/{len(g)}) | {_ms(g['detection_auc_diff'])}"
            f" | {_ms(g['dcr_median_ratio_diff'])} | {_ms(g['mia_auc_diff'])}"
            f" | {g['trtr_auc_base'].mean():.3f} |"
        )
        out[f"{ds}/{size}"] = {
            f"{s}_{k}": float(g[f"{s}_{k}"].mean())
            for s in SCORES
            for k in ("base", "prior", "diff")
        } | {"seeds": len(g), "tstr_better_seeds": better}
    lines += ["", "Over all tables, per size (each table first averaged over seeds):", ""]
    lines += ["| rows | Δ TSTR | Δ detection | Δ DCR ratio | Δ MIA AUC | tables where TSTR rose |"]
    lines.append("|---|---|---|---|---|---|")
    per = both.groupby(["train_size", "dataset"])[[f"{s}_diff" for s in SCORES]].mean()
    for size, g in per.groupby(level=0):
        rose = int((g["tstr_auc_diff"] > 0).sum())
        cells = [f"{g[f'{s}_diff'].mean():+.3f}" for s in SCORES]
        lines.append(f"| {size} | " + " | ".join(cells) + f" | {rose}/{len(g)} |")
        out[f"all/{size}"] = {f"{s}_diff": float(g[f"{s}_diff"].mean()) for s in SCORES}
    return lines, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="the benchmark's output folder")
    args = ap.parse_args()
    if not (args.out / "results.csv").exists():
        print(f"{args.out} holds no results.csv: run the prior benchmark first", file=sys.stderr)
        return 2
    wide = load(args.out)
    both = paired(wide)
    if both.empty:
        print(f"{args.out}: no cell has both {BASE} and {PRIOR}", file=sys.stderr)
        return 2
    lines, out = report(both)
    head = [f"# tabular-lm with and without the prior ({args.out})", ""]
    (args.out / "prior.md").write_text("\n".join(head + lines) + "\n")
    (args.out / "prior.json").write_text(json.dumps(out, indent=1))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
