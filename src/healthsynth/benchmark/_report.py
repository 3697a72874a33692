"""The benchmark's self-contained HTML report (tables and inline SVG plots, no scripts)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

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
from healthsynth.report._plots import Plot, new_figure, safe_label, tidy_axes, to_svg

__all__ = ["render_benchmark"]

_COLOURS = [
    "#4c72b0",
    "#dd8452",
    "#55a868",
    "#c44e52",
    "#8172b3",
    "#937860",
    "#da8bc3",
    "#8c8c8c",
    "#ccb974",
    "#64b5cd",
]


def _colour(names: list[str]) -> dict[str, str]:
    return {n: _COLOURS[i % len(_COLOURS)] for i, n in enumerate(names)}


def _table(df: pd.DataFrame, caption: str = "", bold_min: set[str] | None = None) -> dict:
    cols = [str(c) for c in df.columns]
    rows = []
    best = {}
    for c in bold_min or set():
        if c in df.columns and pd.to_numeric(df[c], errors="coerce").notna().any():
            best[c] = pd.to_numeric(df[c], errors="coerce").min()
    for _, r in df.iterrows():
        cells = []
        for c, v in zip(cols, r.tolist(), strict=True):
            num = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            cls = "num" if num else ""
            if c in best and num and np.isfinite(v) and v == best[c]:
                cls += " best"
            if isinstance(v, (bool, np.bool_)):
                cls = "yes" if v else ""
            cells.append({"text": fmt_number(v), "cls": cls.strip()})
        rows.append(cells)
    return {"caption": caption, "columns": cols, "rows": rows}


def _frontier_plots(fr: pd.DataFrame, colours: dict[str, str]) -> list[Plot]:
    plots = []
    for ds, part in fr.groupby("dataset"):
        fig = new_figure(4.2, 3.2)
        ax = fig.subplots()
        for _, r in part.iterrows():
            c = colours.get(r["generator"], "#333")
            ax.errorbar(
                r["privacy_raw"],
                r["utility"],
                xerr=r["privacy_sd"] if np.isfinite(r["privacy_sd"]) else None,
                yerr=r["utility_sd"] if np.isfinite(r["utility_sd"]) else None,
                fmt="o" if r["on_frontier"] else "x",
                color=c,
                ms=7,
                capsize=2,
            )
            ax.annotate(
                safe_label(r["generator"]),
                (r["privacy_raw"], r["utility"]),
                fontsize=7,
                xytext=(4, 3),
                textcoords="offset points",
                color=c,
            )
        ax.axvline(1.0, color="#999", lw=0.8, ls=":", zorder=0)
        ax.set_xlabel(
            f"privacy: {part['privacy_metric'].iloc[0]} (counts as 1 right of the dotted line)",
            fontsize=8,
        )
        ax.set_ylabel(f"utility: {part['utility_metric'].iloc[0]}", fontsize=8)
        tidy_axes(ax)
        plots.append(
            Plot(
                f"{ds}: privacy–utility (o = on the frontier, x = dominated)",
                to_svg(fig),
                wide=False,
            )
        )
    return plots


def _efficiency_plots(results: pd.DataFrame, colours: dict[str, str]) -> list[Plot]:
    plots = []
    panels = [
        ("detection_auc", "detection AUC (0.5 = indistinguishable)", False),
        (UTILITY_AXIS[0], "TSTR AUC on the real holdout", True),
    ]
    for metric, ylabel, with_ref in panels:
        eff = efficiency(results, metric)
        for ds, part in eff.groupby("dataset"):
            if part["train_size"].nunique() < 2:
                continue
            fig = new_figure(4.2, 3.2)
            ax = fig.subplots()
            for gen, g in part.groupby("generator"):
                ax.errorbar(
                    g["rows"],
                    g["mean"],
                    yerr=g["sd"].fillna(0),
                    marker="o",
                    ms=4,
                    capsize=2,
                    lw=1.2,
                    color=colours.get(gen, "#333"),
                    label=safe_label(gen),
                )
            if with_ref:
                ref = part.groupby("rows")["reference"].mean().dropna()
                if len(ref):
                    ax.plot(ref.index, ref.to_numpy(), "k--", lw=1.2, label="train on real")
            ax.set_xscale("log")
            ticks = sorted(part["rows"].dropna().unique())
            ax.set_xticks(ticks, [f"{t:.0f}" for t in ticks])
            ax.minorticks_off()
            ax.set_xlabel("training rows", fontsize=8)
            ax.set_ylabel(ylabel, fontsize=8)
            ax.legend(fontsize=6, frameon=False)
            tidy_axes(ax)
            plots.append(Plot(f"{ds}: {ylabel} by training rows", to_svg(fig), wide=False))
    return plots


def _cost_plot(cost: pd.DataFrame, colours: dict[str, str]) -> list[Plot]:
    if cost.empty or "fit_seconds" not in cost.columns:
        return []
    piv = cost.pivot_table(index="dataset", columns="generator", values="fit_seconds")
    if piv.empty:
        return []
    fig = new_figure(7.5, 3.0)
    ax = fig.subplots()
    width = 0.8 / max(1, len(piv.columns))
    x = np.arange(len(piv.index))
    for i, gen in enumerate(piv.columns):
        ax.bar(
            x + i * width,
            piv[gen].to_numpy(float),
            width,
            label=safe_label(gen),
            color=colours.get(gen, "#333"),
        )
    ax.set_xticks(x + width * (len(piv.columns) - 1) / 2, [safe_label(d) for d in piv.index])
    ax.set_yscale("log")
    ax.set_ylabel("fit seconds (mean per cell)", fontsize=8)
    ax.legend(fontsize=6, frameon=False, ncol=4)
    tidy_axes(ax)
    return [Plot("Fitting time per cell, by dataset and generator (log scale)", to_svg(fig))]


def _gain_plot(exp: pd.DataFrame, metric: str, colours: dict[str, str], smallest: bool) -> list:
    part = exp[exp["metric"] == metric]
    if part.empty:
        return []
    plots = []
    for ds, d in part.groupby("dataset"):
        d = d[d["generator"] != "none"]
        if smallest:  # the smallest subgroup's label is the first subgroup listed per method
            first = d.groupby("generator")["subgroup"].first()
            d = d[d["subgroup"] == d["generator"].map(first)]
        d = d.groupby("generator", sort=False)["gain"].mean()
        if d.empty:
            continue
        fig = new_figure(4.2, 2.8)
        ax = fig.subplots()
        ax.barh(
            [safe_label(g) for g in d.index],
            d.to_numpy(float),
            color=[colours.get(g, "#333") for g in d.index],
        )
        ax.axvline(0, color="#333", lw=0.8)
        ax.set_xlabel(f"gain in {metric} over 'none'", fontsize=8)
        tidy_axes(ax)
        plots.append(
            Plot(f"{ds}: {metric} gain over training on real rows only", to_svg(fig), wide=False)
        )
    return plots


def _section(
    id_: str,
    title: str,
    text: str = "",
    *,
    tables: list[dict] | None = None,
    plots: list[Plot] | None = None,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "id": id_,
        "title": title,
        "text": text,
        "tables": tables or [],
        "plots": plots or [],
        "notes": notes or [],
    }


def _generator_sections(results: pd.DataFrame, colours: dict[str, str]) -> list[dict[str, Any]]:
    """Ranks, the privacy–utility frontier, data efficiency and the per-dataset tables."""
    sections = []
    ranks = rank_table(results)
    if not ranks.empty:
        df = ranks.reset_index().rename(columns={"index": "generator"})
        ranked = "; ".join(f"{d}: {', '.join(m for m, _ in ms)}" for d, ms in RANKED.items())
        sections.append(
            _section(
                "ranks",
                "Mean rank per dimension (1 = best)",
                f"At each dataset's largest training size. Ranked metrics: {ranked}. 'overall' "
                "is the mean of the quality dimensions (cost left out).",
                tables=[_table(df, bold_min=set(df.columns) - {"generator"})],
            )
        )
    fr = frontier(results)
    if len(fr):
        sections.append(
            _section(
                "frontier",
                "Privacy–utility frontier",
                "A generator is on the frontier when no other is at least as good on both axes "
                "and better on one. Error bars: standard deviation over seeds.",
                tables=[_table(fr[FRONTIER_COLUMNS])],
                plots=_frontier_plots(fr, colours),
            )
        )
    eff_plots = _efficiency_plots(results, colours)
    if eff_plots:
        sections.append(
            _section(
                "efficiency",
                "Data efficiency: how much real data is needed",
                "Quality and utility by the number of real training rows (log scale); the dashed "
                "line is a model trained on those real rows directly.",
                plots=eff_plots,
            )
        )
    sections.append(
        _section(
            "datasets",
            "Per dataset (largest training size, mean ± sd over seeds)",
            tables=[_table(t, caption=ds) for ds, t in dataset_tables(results).items()],
        )
    )
    return sections


def _experiment_sections(
    results: pd.DataFrame, config: BenchmarkConfig, colours: dict[str, str]
) -> list[dict[str, Any]]:
    """The augmentation experiment's scores and gains on the real holdout."""
    exp = experiment_table(results)
    if not len(exp):
        return []
    exp = exp.assign(score=[plus_minus(a, b) for a, b in zip(exp["mean"], exp["sd"], strict=True)])
    metric = "minority_f1" if config.experiment == "class-imbalance" else "subgroup_auc"
    columns = ["train_size", "generator", "metric", "subgroup", "score", "gain"]
    tables = [_table(d[columns], caption=str(ds)) for ds, d in exp.groupby("dataset")]
    return [
        _section(
            "experiment",
            f"{config.experiment}: scores on the real holdout",
            "Mean ± sd over seeds; gain is the mean paired difference to 'none' (the classifier "
            "trained on the real rows only).",
            tables=tables,
            plots=_gain_plot(exp, metric, colours, smallest=config.experiment == "health-equity"),
        )
    ]


def _closing_sections(results: pd.DataFrame, colours: dict[str, str]) -> list[dict[str, Any]]:
    """Cost per cell, and the cells that did not finish."""
    cost = cost_table(results)
    sections = [
        _section(
            "cost",
            "Cost per cell",
            "Mean seconds and peak memory (MiB) of one cell's process; cell counts by status.",
            tables=[_table(cost)],
            plots=_cost_plot(cost, colours),
        )
    ]
    failed = results[(results["metric"] == "cell_status") & (results["status"] != "ok")]
    if len(failed):
        notes = [
            f"{r.dataset} · {r.generator} · n={r.train_size} · seed {r.seed}: {r.status}: "
            f"{r.message}"
            for r in failed.itertuples()
        ]
        sections.append(_section("failed", "Cells that did not finish", notes=notes))
    return sections


def render_benchmark(results: pd.DataFrame, config: BenchmarkConfig) -> tuple[str, list[Plot]]:
    """The report's HTML and its plots (also written as SVG files next to it)."""
    import healthsynth

    colours = _colour([m.name for m in config.methods])
    status = results[results["metric"] == "cell_status"]["status"].value_counts().to_dict()
    if config.experiment == "generators":
        sections = _generator_sections(results, colours)
    else:
        sections = _experiment_sections(results, config, colours)
    sections += _closing_sections(results, colours)
    env = Environment(
        loader=PackageLoader("healthsynth.benchmark", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
    )
    html = env.get_template("benchmark.html.j2").render(
        config=config,
        datasets=[d.name for d in config.datasets],
        methods=[m.name for m in config.methods],
        sizes=[str(s) for s in config.train_sizes],
        seeds=list(config.seeds),
        status=status,
        sections=sections,
        version=getattr(healthsynth, "__version__", "?"),
    )
    return html, [p for s in sections for p in s["plots"]]
