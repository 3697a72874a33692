"""The tables a benchmark summary shows, computed from the results table of ``collect``.

Ranks per dimension, the privacy–utility frontier, data efficiency, cost and the augmentation
experiments. The leaderboard (Markdown, :mod:`._summary`) and the HTML report (:mod:`._report`)
both read these tables; this module imports neither of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CAPS",
    "FRONTIER_COLUMNS",
    "PRIVACY_AXIS",
    "RANKED",
    "UTILITY_AXIS",
    "cost_table",
    "dataset_tables",
    "efficiency",
    "experiment_table",
    "fmt_number",
    "frontier",
    "headline_means",
    "largest_size",
    "plus_minus",
    "rank_table",
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


def fmt_number(x: Any, digits: int = 3) -> str:
    """A figure for a table cell: ``–`` when missing, yes/no, whole numbers with separators."""
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    if isinstance(x, (float, np.floating)):
        v = float(x)
        if abs(v) >= 100:
            return f"{v:,.0f}"
        return f"{v:.{digits}g}" if abs(v) < 1e-3 and v != 0 else f"{v:.{digits}f}"
    return str(x)


def plus_minus(mean: Any, sd: Any) -> str:
    """``mean ± sd`` (just the mean when the sd is missing)."""
    if sd is None or not np.isfinite(sd):
        return fmt_number(mean)
    return f"{fmt_number(mean)} ± {fmt_number(sd, 2)}"


def dataset_tables(results: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per dataset (largest size): the ranked metrics per generator, 'mean ± sd' over seeds."""
    means = headline_means(results, "largest")
    wanted = [m for metrics in RANKED.values() for m, _ in metrics]
    out = {}
    for ds, part in means.groupby("dataset"):
        part = part[part["metric"].isin(wanted)]
        if part.empty:
            continue
        part = part.assign(
            cell=[plus_minus(a, b) for a, b in zip(part["mean"], part["sd"], strict=True)]
        )
        wide = part.pivot(index="generator", columns="metric", values="cell")
        wide = wide[[m for m in wanted if m in wide.columns]]
        ref = part.groupby("metric")["reference"].mean()
        ref_row = {m: fmt_number(ref.get(m)) for m in wide.columns}
        wide.loc["(real holdout)"] = [ref_row[m] for m in wide.columns]
        out[str(ds)] = wide.reset_index()
    return out
