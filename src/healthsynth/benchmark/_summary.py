"""Summaries of a benchmark folder: ``results.csv``, ``leaderboard.md`` and ``report.html``.

Everything here reads the cell folders only, so a summary can be rebuilt at any time (also
while a run is going, or after it was killed).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.benchmark._cells import Cell
from healthsynth.benchmark._config import BenchmarkConfig

__all__ = [
    "RANKED",
    "collect",
    "frontier",
    "leaderboard_markdown",
    "rank_table",
    "write_summary",
]

#: metrics ranked per dimension (overall records), with the direction used to rank them
RANKED: dict[str, tuple[tuple[str, str], ...]] = {
    "fidelity": (("detection_auc", "lower"), ("column_distance", "lower")),
    "utility": (("tstr_auc", "higher"), ("tstr_r2", "higher")),
    "privacy": (("dcr_median_ratio", "higher"), ("exact_copy_rate", "lower")),
    "diversity": (("coverage", "higher"),),
    "fairness": (("subgroup_utility_gap_max", "lower"),),
    "clinical": (("rule_violation_rate", "lower"),),
    "cost": (("fit_seconds", "lower"),),
}

#: ceilings applied before ranking and on the frontier: a DCR ratio above 1 means synthetic rows
#: are farther from the training rows than new real patients are, which is no further privacy
#: (the holdout already sets the bar) but a sign of unrealistic rows, so it counts as 1
CAPS: dict[str, float] = {"dcr_median_ratio": 1.0}

#: the two axes of the privacy–utility frontier (first present metric of each is used)
UTILITY_AXIS = ("tstr_auc", "tstr_r2")
PRIVACY_AXIS = ("dcr_median_ratio",)

#: the frontier's columns shown in the leaderboard and the report
FRONTIER_COLUMNS = [
    "dataset",
    "generator",
    "utility",
    "privacy",
    "privacy_raw",
    "on_frontier",
    "dominated_by",
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


def _overall_ok(results: pd.DataFrame) -> pd.DataFrame:
    r = results[(results["status"] == "ok") & results["subgroup"].isna()]
    return r[r["value"].notna()]


def largest_size(results: pd.DataFrame) -> dict[str, str]:
    """Per dataset, the training-size label with the most training rows."""
    out = {}
    for d, part in results.groupby("dataset"):
        rows = part.groupby("train_size")["train_rows"].max().dropna()
        if len(rows):
            out[str(d)] = str(rows.idxmax())
    return out


def headline_means(results: pd.DataFrame, size: str | None = None) -> pd.DataFrame:
    """Mean, standard deviation and count over seeds of every overall metric, per cell group."""
    ok = _overall_ok(results)
    if size == "largest":
        big = largest_size(results)
        ok = ok[ok["dataset"].map(big) == ok["train_size"]]
    g = ok.groupby(["dataset", "generator", "train_size", "metric"])
    out = g.agg(
        mean=("value", "mean"),
        sd=("value", "std"),
        n=("value", "size"),
        rows=("train_rows", "mean"),
        reference=("reference", "mean"),
    )
    return out.reset_index()


def _capped(means: pd.DataFrame) -> pd.DataFrame:
    means = means.copy()
    for metric, cap in CAPS.items():
        rows = means["metric"] == metric
        means.loc[rows, "mean"] = means.loc[rows, "mean"].clip(upper=cap)
    return means


def rank_table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean rank (1 = best) per generator and dimension, at each dataset's largest size.

    Each ranked metric (:data:`RANKED`) is ranked per dataset over the generators' seed means;
    a dimension's rank is the mean over its metrics and datasets; ``overall`` is the mean of
    the dimensions' ranks (cost left out). Metrics in :data:`CAPS` are capped first.
    """
    means = _capped(headline_means(results, "largest"))
    table: dict[str, dict[str, list[float]]] = {}
    for dim, metrics in RANKED.items():
        for metric, direction in metrics:
            part = means[means["metric"] == metric]
            for _, by_ds in part.groupby("dataset"):
                vals = by_ds.set_index("generator")["mean"]
                if len(vals) < 2:
                    continue
                ranks = vals.rank(ascending=(direction == "lower"), method="average")
                for gen, rk in ranks.items():
                    table.setdefault(str(gen), {}).setdefault(dim, []).append(float(rk))
    out = pd.DataFrame(
        {g: {d: float(np.mean(v)) for d, v in dims.items()} for g, dims in table.items()}
    ).T
    if out.empty:
        return out
    cols = [d for d in RANKED if d in out.columns]
    out = out[cols]
    quality = [d for d in cols if d != "cost"]
    out["overall"] = out[quality].mean(axis=1)
    return out.sort_values("overall")


def _axis(means: pd.DataFrame, names: Sequence[str]) -> tuple[str | None, pd.DataFrame]:
    for n in names:
        part = means[means["metric"] == n]
        if len(part):
            return n, part
    return None, means.iloc[0:0]


def frontier(results: pd.DataFrame) -> pd.DataFrame:
    """Per dataset (largest size): each generator's utility, privacy and frontier membership.

    A generator is on the privacy–utility frontier when no other generator is at least as good
    on both and better on one. Privacy is capped as in :data:`CAPS`.
    """
    raw = headline_means(results, "largest")
    means = _capped(raw)
    means["raw"] = raw["mean"]
    rows = []
    for ds, part in means.groupby("dataset"):
        u_name, u = _axis(part, UTILITY_AXIS)
        p_name, p = _axis(part, PRIVACY_AXIS)
        if u_name is None or p_name is None:
            continue
        both = pd.merge(
            u[["generator", "mean", "sd"]].rename(columns={"mean": "utility", "sd": "utility_sd"}),
            p[["generator", "mean", "sd", "raw"]].rename(
                columns={"mean": "privacy", "sd": "privacy_sd", "raw": "privacy_raw"}
            ),
            on="generator",
        )
        for _, r in both.iterrows():
            others = both[both["generator"] != r["generator"]]
            beaten_by = others[
                (others["utility"] >= r["utility"])
                & (others["privacy"] >= r["privacy"])
                & ((others["utility"] > r["utility"]) | (others["privacy"] > r["privacy"]))
            ]["generator"].tolist()
            rows.append(
                {
                    "dataset": ds,
                    "generator": r["generator"],
                    "utility_metric": u_name,
                    "utility": r["utility"],
                    "utility_sd": r["utility_sd"],
                    "privacy_metric": p_name,
                    "privacy": r["privacy"],
                    "privacy_sd": r["privacy_sd"],
                    "privacy_raw": r["privacy_raw"],
                    "on_frontier": not beaten_by,
                    "dominated_by": ", ".join(beaten_by),
                }
            )
    return pd.DataFrame(rows)


def efficiency(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    """``metric`` per dataset, generator and training rows (mean and sd over seeds)."""
    ok = _overall_ok(results)
    part = ok[ok["metric"] == metric]
    g = part.groupby(["dataset", "generator", "train_size"])
    out = g.agg(
        rows=("train_rows", "mean"),
        mean=("value", "mean"),
        sd=("value", "std"),
        reference=("reference", "mean"),
    ).reset_index()
    return out.sort_values(["dataset", "generator", "rows"])


def cost_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and generator: mean seconds, peak MiB, and cells by status."""
    ok = results[results["status"].notna()]
    figures = ok[
        ok["metric"].isin(
            ["fit_seconds", "sample_seconds", "evaluate_seconds", "cell_seconds", "peak_rss_mb"]
        )
    ]
    wide = (
        figures.groupby(["dataset", "generator", "metric"])["value"].mean().unstack("metric")
        if len(figures)
        else pd.DataFrame()
    )
    status = results[results["metric"] == "cell_status"]
    counts = status.groupby(["dataset", "generator", "status"]).size().unstack("status")
    out = wide.join(counts, how="outer") if len(wide) else counts
    return out.reset_index()


def experiment_table(results: pd.DataFrame) -> pd.DataFrame:
    """Augmentation experiments: mean, sd and paired gain over ``none`` per method and metric.

    Rows are per dataset, size, method, metric and subgroup; the gain is the mean over seeds of
    the difference to the ``none`` method on the same dataset, size and seed.
    """
    ok = results[(results["status"] == "ok") & (results["dimension"] == "utility")].copy()
    if ok.empty:
        return pd.DataFrame()
    ok["subgroup"] = ok["subgroup"].fillna("")
    key = ["dataset", "train_size", "seed", "metric", "subgroup"]
    base = ok[ok["generator_name"] == "none"][key + ["value"]].rename(columns={"value": "none"})
    ok = ok.merge(base, on=key, how="left")
    ok["gain"] = ok["value"] - ok["none"]
    g = ok.groupby(["dataset", "train_size", "generator", "metric", "subgroup"], sort=False)
    return g.agg(
        mean=("value", "mean"), sd=("value", "std"), gain=("gain", "mean"), n=("value", "size")
    ).reset_index()


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    if isinstance(x, (float, np.floating)):
        if abs(x) >= 100:
            return f"{x:,.0f}"
        return f"{x:.{digits}g}" if abs(x) < 1e-3 and x != 0 else f"{x:.{digits}f}"
    return str(x)


def _md(df: pd.DataFrame) -> str:
    if df.empty:
        return "_(nothing to show)_\n"
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(_fmt(v).replace("|", "\\|") for v in r.tolist()) + " |")
    return "\n".join(lines) + "\n"


def _pm(mean: Any, sd: Any) -> str:
    if sd is None or not np.isfinite(sd):
        return _fmt(mean)
    return f"{_fmt(mean)} ± {_fmt(sd, 2)}"


def dataset_tables(results: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per dataset (largest size): the ranked metrics per generator, 'mean ± sd' over seeds."""
    means = headline_means(results, "largest")
    wanted = [m for metrics in RANKED.values() for m, _ in metrics]
    out = {}
    for ds, part in means.groupby("dataset"):
        part = part[part["metric"].isin(wanted)]
        if part.empty:
            continue
        part = part.assign(cell=[_pm(a, b) for a, b in zip(part["mean"], part["sd"], strict=True)])
        wide = part.pivot(index="generator", columns="metric", values="cell")
        wide = wide[[m for m in wanted if m in wide.columns]]
        ref = part.groupby("metric")["reference"].mean()
        ref_row = {m: _fmt(ref.get(m)) for m in wide.columns}
        wide.loc["(real holdout)"] = [ref_row[m] for m in wide.columns]
        out[str(ds)] = wide.reset_index()
    return out


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
    failed = results[(results["metric"] == "cell_status") & (results["status"] != "ok")]
    if config.experiment == "generators":
        ranks = rank_table(results)
        lines += [
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
            piv = eff.pivot_table(
                index=["dataset", "generator"], columns="train_size", values="mean"
            )
            ref = eff.pivot_table(index="dataset", columns="train_size", values="reference")
            ref.index = pd.MultiIndex.from_tuples([(d, "real") for d in ref.index])
            piv = pd.concat([piv, ref]).sort_index()
            piv = piv[[c for c in order if c in piv.columns]].reset_index()
            piv.columns = ["dataset", "generator"] + [f"n={c}" for c in piv.columns[2:]]
            lines += [_md(piv)]
    else:
        exp = experiment_table(results)
        lines += [
            "## Scores on the real holdout (mean ± sd over seeds; gain = paired difference to "
            "'none')",
            "",
        ]
        if len(exp):
            exp = exp.assign(score=[_pm(a, b) for a, b in zip(exp["mean"], exp["sd"], strict=True)])
            lines += [
                _md(
                    exp[
                        [
                            "dataset",
                            "train_size",
                            "generator",
                            "metric",
                            "subgroup",
                            "score",
                            "gain",
                        ]
                    ]
                )
            ]
    cost = cost_table(results)
    lines += ["## Cost per cell (mean seconds, peak MiB) and cell status", "", _md(cost)]
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
