"""Summaries of a benchmark folder: ``results.csv``, ``leaderboard.md`` and ``report.html``.

Everything here reads the cell folders only, so a summary can be rebuilt at any time (also
while a run is going, or after it was killed).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from healthsynth.benchmark._cells import Cell
from healthsynth.benchmark._config import BenchmarkConfig
from healthsynth.benchmark._tables import (
    FRONTIER_COLUMNS,
    RANKED,
    UTILITY_AXIS,
    cost_table,
    dataset_tables,
    efficiency,
    experiment_table,
    fmt_number,
    frontier,
    plus_minus,
    rank_table,
)

# RANKED, frontier and rank_table live in ._tables; they stay importable from here
__all__ = [
    "RANKED",
    "collect",
    "frontier",
    "leaderboard_markdown",
    "rank_table",
    "write_summary",
]

COLUMNS = [
    "dataset",
    "generator",
    "generator_name",
    "train_size",
    "train_rows",
    "seed",
    "metric",
    "dimension",
    "subgroup",
    "value",
    "low",
    "high",
    "reference",
    "direction",
    "status",
    "message",
]

_CELL_FIGURES = (
    ("fit_seconds", "s"),
    ("sample_seconds", "s"),
    ("evaluate_seconds", "s"),
    ("seconds", "s"),
    ("peak_rss_mb", "MiB"),
)


def collect(root: Path, cells: Sequence[Cell]) -> pd.DataFrame:
    """One row per metric record of every finished cell, plus each cell's status and cost."""
    rows: list[dict[str, Any]] = []
    for cell in cells:
        folder = root / "cells" / cell.folder
        try:
            info = json.loads((folder / "cell.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        try:
            records = json.loads((folder / "records.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            records = []
        base = {
            "dataset": cell.dataset.name,
            "generator": cell.method.name,
            "generator_name": cell.method.generator,
            "train_size": str(cell.size),
            "train_rows": info.get("train_rows"),
            "seed": cell.seed,
        }
        rows.append(
            {
                **base,
                "metric": "cell_status",
                "dimension": "cost",
                "status": info.get("status"),
                "message": info.get("error"),
            }
        )
        for key, _unit in _CELL_FIGURES:
            if info.get(key) is not None:
                rows.append(
                    {
                        **base,
                        "metric": "cell_seconds" if key == "seconds" else key,
                        "dimension": "cost",
                        "value": float(info[key]),
                        "direction": "lower",
                        "status": "ok",
                    }
                )
        for r in records:
            interval = r.get("interval") or [None, None]
            rows.append(
                {
                    **base,
                    "metric": r.get("name"),
                    "dimension": r.get("dimension"),
                    "subgroup": r.get("subgroup"),
                    "value": r.get("value"),
                    "low": interval[0],
                    "high": interval[1],
                    "reference": r.get("reference"),
                    "direction": r.get("direction"),
                    "status": r.get("status"),
                    "message": r.get("message"),
                }
            )
    df = pd.DataFrame(rows, columns=COLUMNS)
    for c in ("value", "low", "high", "reference", "train_rows"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


def _md(df: pd.DataFrame) -> str:
    if df.empty:
        return "_(nothing to show)_\n"
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append(
            "| " + " | ".join(fmt_number(v).replace("|", "\\|") for v in r.tolist()) + " |"
        )
    return "\n".join(lines) + "\n"


def _generator_lines(results: pd.DataFrame, config: BenchmarkConfig) -> list[str]:
    """Ranks, the privacy–utility frontier, the per-dataset tables and data efficiency."""
    ranks = rank_table(results)
    lines = [
        "## Mean rank per dimension (1 = best)",
        "",
        "At each dataset's largest training size; each dimension's metrics are ranked per "
        "dataset over the seed means, and the ranks averaged. `overall` leaves cost out.",
        "",
        _md(ranks.reset_index().rename(columns={"index": "generator"})),
    ]
    fr = frontier(results)
    if len(fr):
        lines += [
            "## Privacy–utility frontier",
            "",
            "Utility is the train-on-synthetic AUC on the real holdout; privacy is the DCR "
            "ratio (synthetic-to-training over holdout-to-training median distance; 1 means "
            "synthetic rows are no closer to the training rows than fresh real rows are), "
            "capped at 1: rows farther away than new patients are not more private, only "
            "less realistic.",
            "",
            _md(fr[FRONTIER_COLUMNS]),
        ]
    for ds, table in dataset_tables(results).items():
        lines += [f"## {ds}", "", _md(table)]
    eff = efficiency(results, UTILITY_AXIS[0])
    if eff["train_size"].nunique() > 1:
        lines += [
            "## Data efficiency: TSTR AUC by training size",
            "",
            "Mean over seeds; the training rows of `all` differ by dataset. `real` is the "
            "model trained on the real training rows themselves.",
            "",
        ]
        order = [str(s) for s in config.train_sizes]
        piv = eff.pivot_table(index=["dataset", "generator"], columns="train_size", values="mean")
        ref = eff.pivot_table(index="dataset", columns="train_size", values="reference")
        ref.index = pd.MultiIndex.from_tuples([(d, "real") for d in ref.index])
        piv = pd.concat([piv, ref]).sort_index()
        piv = piv[[c for c in order if c in piv.columns]].reset_index()
        piv.columns = ["dataset", "generator"] + [f"n={c}" for c in piv.columns[2:]]
        lines += [_md(piv)]
    return lines


def _experiment_lines(results: pd.DataFrame) -> list[str]:
    """The augmentation experiment's scores and paired gains."""
    exp = experiment_table(results)
    lines = [
        "## Scores on the real holdout (mean ± sd over seeds; gain = paired difference to 'none')",
        "",
    ]
    if len(exp):
        exp = exp.assign(
            score=[plus_minus(a, b) for a, b in zip(exp["mean"], exp["sd"], strict=True)]
        )
        columns = ["dataset", "train_size", "generator", "metric", "subgroup", "score", "gain"]
        lines += [_md(exp[columns])]
    return lines


def leaderboard_markdown(results: pd.DataFrame, config: BenchmarkConfig) -> str:
    """The leaderboard as Markdown."""
    lines = [f"# Benchmark: {config.name}", ""]
    if config.description:
        lines += [config.description.strip(), ""]
    status = results[results["metric"] == "cell_status"]["status"].value_counts()
    lines += [
        f"Experiment: {config.experiment}. Datasets: {', '.join(d.name for d in config.datasets)}."
        f" Generators: {', '.join(m.name for m in config.methods)}. Training sizes: "
        f"{', '.join(map(str, config.train_sizes))}. Seeds: "
        f"{', '.join(map(str, config.seeds))}.",
        "",
        "Cells: " + (", ".join(f"{int(v)} {k}" for k, v in status.items()) or "none finished yet"),
        "",
    ]
    if config.experiment == "generators":
        lines += _generator_lines(results, config)
    else:
        lines += _experiment_lines(results)
    cost = cost_table(results)
    lines += ["## Cost per cell (mean seconds, peak MiB) and cell status", "", _md(cost)]
    failed = results[(results["metric"] == "cell_status") & (results["status"] != "ok")]
    if len(failed):
        lines += ["## Cells that did not finish", ""]
        lines += [
            f"- {r.dataset} · {r.generator} · n={r.train_size} · seed {r.seed}: {r.status}: "
            f"{r.message}"
            for r in failed.itertuples()
        ]
        lines.append("")
    return "\n".join(lines)


def write_summary(root: Path, config: BenchmarkConfig, cells: Sequence[Cell]) -> dict[str, Path]:
    """Write ``results.csv``, ``leaderboard.md``, ``report.html`` and ``plots/*.svg``."""
    import re

    from healthsynth.benchmark._report import render_benchmark
    from healthsynth.data import atomic_path
    from healthsynth.data._io import atomic_write_text

    results = collect(root, cells)
    with atomic_path(root / "results.csv") as tmp:
        results.to_csv(tmp, index=False)
    atomic_write_text(root / "leaderboard.md", leaderboard_markdown(results, config))
    html, plots = render_benchmark(results, config)
    atomic_write_text(root / "report.html", html)
    (root / "plots").mkdir(exist_ok=True)
    for plot in plots:
        slug = re.sub(r"[^a-z0-9]+", "-", plot.title.lower()).strip("-")[:80]
        atomic_write_text(root / "plots" / f"{slug}.svg", str(plot.svg))
    return {
        "results": root / "results.csv",
        "leaderboard": root / "leaderboard.md",
        "report": root / "report.html",
    }
