"""Plots for the report, drawn with matplotlib's object-oriented API into inline SVG.

Each function takes plain data from an evaluation result and returns :class:`Plot` objects, or
an empty list when the data it needs is missing or malformed: metrics are written by many
people, and a report must never fail because one of them changed its ``details``.

Nothing here touches matplotlib's global state (``pyplot``, ``rcParams``): every figure is a
:class:`matplotlib.figure.Figure` with its own canvas.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

__all__ = [
    "MAX_COLUMN_PLOTS",
    "Plot",
    "dcr_histogram",
    "dependence_heatmap",
    "distribution_plots",
    "new_figure",
    "reference_bars",
    "safe_label",
    "tidy_axes",
    "to_svg",
]

#: at most this many per-column distribution plots go into one report
MAX_COLUMN_PLOTS = 24

_REAL, _SYNTH, _HOLD = "#4c72b0", "#dd8452", "#55a868"
_LABEL_CHARS = 28


@dataclass(frozen=True)
class Plot:
    """One drawn figure.

    Parameters
    ----------
    title
        Caption shown under the figure (plain text; the template escapes it).
    svg
        The figure as an inline ``<svg>`` element, produced by matplotlib only.
    wide
        Whether the figure takes a whole row of the page (small multiples share rows).
    """

    title: str
    svg: Markup
    wide: bool = True


def safe_label(value: Any, chars: int = _LABEL_CHARS) -> str:
    """Data text made safe for matplotlib: shortened, and ``$`` kept literal (no mathtext)."""
    text = str(value)
    if len(text) > chars:
        text = text[: chars - 1] + "…"
    return text.replace("$", r"\$")


def _numbers(values: Any, n: int | None = None) -> list[float] | None:
    """``values`` as floats (None becomes NaN), or None if it is not a list of ``n`` numbers."""
    if not isinstance(values, Sequence) or isinstance(values, str):
        return None
    out = []
    for v in values:
        if v is None:
            out.append(math.nan)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(float(v))
        else:
            return None
    if n is not None and len(out) != n:
        return None
    return out


_SVG_START = re.compile(r"<svg\b")
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)


def to_svg(fig: Figure) -> Markup:
    """Serialise ``fig`` as an ``<svg>`` element for inlining (no XML prolog, no metadata)."""
    FigureCanvasSVG(fig)
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    start = _SVG_START.search(text)
    if start is None:  # pragma: no cover - matplotlib always writes an <svg> element
        raise RuntimeError("matplotlib wrote no <svg> element")
    # The SVG comes from matplotlib, which escapes every text it writes (labels become glyph
    # paths plus an escaped comment), so it is safe to mark it as markup here.
    return Markup(_METADATA.sub("", text[start.start() :]))


def new_figure(width: float, height: float, *, constrained: bool = True) -> Figure:
    """An empty figure of ``width`` × ``height`` inches (constrained layout unless told not to)."""
    # constrained layout fits labels of any length but draws the figure twice; small
    # multiples use fixed margins instead to keep rendering fast
    return Figure(figsize=(width, height), layout="constrained" if constrained else None)


def tidy_axes(ax: Any) -> None:
    """Drop the top and right spines of ``ax``."""
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.tick_params(labelsize=7)


def distribution_plots(distributions: Any, *, limit: int | None = None) -> tuple[list[Plot], int]:
    """Per-column real vs synthetic (vs holdout) shares, one small figure per column.

    Parameters
    ----------
    distributions
        ``details["distributions"]`` of the ``column_distance`` record: ``{column: {"kind",
        "labels", "real", "synthetic", "holdout"}}``.
    limit
        Draw at most this many columns (in the order given); default ``MAX_COLUMN_PLOTS``.

    Returns
    -------
    plots, left_out
        The figures, and how many usable columns were not drawn because of ``limit``.
    """
    if not isinstance(distributions, Mapping):
        return [], 0
    usable = []
    for col, d in distributions.items():
        if not isinstance(d, Mapping) or not isinstance(d.get("labels"), Sequence):
            continue
        labels = [str(v) for v in d["labels"]]
        real = _numbers(d.get("real"), len(labels))
        synth = _numbers(d.get("synthetic"), len(labels))
        hold = _numbers(d.get("holdout"), len(labels)) if d.get("holdout") is not None else None
        if not labels or real is None or synth is None:
            continue
        usable.append((str(col), d.get("kind"), labels, real, synth, hold))
    if limit is None:
        limit = MAX_COLUMN_PLOTS
    plots = [_distribution(*u) for u in usable[:limit]]
    return plots, max(0, len(usable) - limit)


def _distribution(
    col: str,
    kind: Any,
    labels: list[str],
    real: list[float],
    synth: list[float],
    hold: list[float] | None,
) -> Plot:
    fig = new_figure(3.0, 2.1, constrained=False)
    fig.subplots_adjust(left=0.17, right=0.97, top=0.88, bottom=0.3)
    ax = fig.add_subplot()
    series = [("real", real, _REAL), ("synthetic", synth, _SYNTH)]
    if hold is not None:
        series.append(("holdout", hold, _HOLD))
    x = list(range(len(labels)))
    if kind == "numeric":
        for name, ys, colour in series:
            ax.step(x, ys, where="mid", label=name, color=colour, linewidth=1.4)
    else:
        width = 0.8 / len(series)
        for i, (name, ys, colour) in enumerate(series):
            offset = (i - (len(series) - 1) / 2) * width
            ax.bar([v + offset for v in x], ys, width=width, label=name, color=colour)
    step = max(1, math.ceil(len(labels) / 8))
    ax.set_xticks(x[::step], [safe_label(v, 12) for v in labels[::step]], rotation=30, ha="right")
    ax.set_ylabel("share", fontsize=7)
    ax.set_title(safe_label(col), fontsize=8)
    ax.legend(fontsize=6, frameon=False)
    tidy_axes(ax)
    return Plot(title=f"{col}: shares of rows", svg=to_svg(fig), wide=False)


def dependence_heatmap(details: Any) -> list[Plot]:
    """Heatmap of ``details["difference"]`` (synthetic minus real dependence) by column pair."""
    if not isinstance(details, Mapping) or not isinstance(details.get("columns"), Sequence):
        return []
    cols = [str(c) for c in details["columns"]]
    matrix = details.get("difference")
    n = len(cols)
    if n == 0 or not isinstance(matrix, Sequence) or len(matrix) != n:
        return []
    rows = [_numbers(r, n) for r in matrix]
    if any(r is None for r in rows):
        return []
    grid = [r for r in rows if r is not None]
    finite = [abs(v) for r in grid for v in r if math.isfinite(v)]
    bound = max(finite, default=0.0) or 1.0
    side = min(9.0, 2.6 + 0.35 * n)
    fig = new_figure(side + 0.8, side)
    ax = fig.add_subplot()
    image = ax.imshow(grid, cmap="RdBu_r", vmin=-bound, vmax=bound)
    ticks = [safe_label(c) for c in cols]
    size = 7 if n <= 16 else 5
    ax.set_xticks(range(n), ticks, rotation=60, ha="right", fontsize=size)
    ax.set_yticks(range(n), ticks, fontsize=size)
    if n <= 10:
        for i, r in enumerate(grid):
            for j, v in enumerate(r):
                if math.isfinite(v):
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6)
    colourbar = fig.colorbar(image, ax=ax, shrink=0.8)
    colourbar.set_label("synthetic − real", fontsize=7)
    colourbar.ax.tick_params(labelsize=6)
    return [Plot(title="Dependence difference (synthetic minus real)", svg=to_svg(fig))]


def dcr_histogram(details: Any) -> list[Plot]:
    """Distance-to-closest-record histogram of synthetic rows and holdout rows."""
    if not isinstance(details, Mapping) or not isinstance(details.get("histogram"), Mapping):
        return []
    hist = details["histogram"]
    edges = _numbers(hist.get("edges"))
    if edges is None or len(edges) < 2:
        return []
    synth = _numbers(hist.get("synthetic"), len(edges) - 1)
    hold = _numbers(hist.get("holdout"), len(edges) - 1)
    if synth is None or hold is None:
        return []
    fig = new_figure(6.4, 2.6)
    ax = fig.add_subplot()
    ax.stairs(synth, edges, label="synthetic → training", color=_SYNTH, linewidth=1.6)
    ax.stairs(hold, edges, label="holdout → training", color=_HOLD, linewidth=1.6)
    ax.set_xlabel("distance to closest training record", fontsize=7)
    ax.set_ylabel("share of rows", fontsize=7)
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    tidy_axes(ax)
    return [Plot(title="Distance to closest record", svg=to_svg(fig))]


def trajectory_plots(details: Any, *, limit: int = 8) -> list[Plot]:
    """Yearly mean lab values over time, real training patients against synthetic ones.

    ``details`` is the ``lab_trajectories`` record's: ``curves`` maps an item to its ``bins``
    (years from day 0), ``real`` and ``synthetic`` means.
    """
    if not isinstance(details, Mapping) or not isinstance(details.get("curves"), Mapping):
        return []
    plots = []
    for item, c in list(details["curves"].items())[:limit]:
        if not isinstance(c, Mapping):
            continue
        bins = _numbers(c.get("bins"))
        real = _numbers(c.get("real"), len(bins) if bins else None)
        if bins is None or real is None:
            continue
        synth = [
            float(v) if isinstance(v, (int, float)) and math.isfinite(v) else float("nan")
            for v in (c.get("synthetic") or [None] * len(bins))
        ][: len(bins)]
        fig = new_figure(3.2, 2.2)
        ax = fig.add_subplot()
        ax.plot(bins, real, marker="o", markersize=2.5, color=_REAL, label="real")
        ax.plot(bins, synth, marker="o", markersize=2.5, color=_SYNTH, label="synthetic")
        ax.set_xlabel("years from day 0", fontsize=7)
        ax.set_ylabel("mean value", fontsize=7)
        ax.legend(fontsize=6, frameon=False)
        tidy_axes(ax)
        plots.append(Plot(title=f"Lab trajectory: {safe_label(item)}", svg=to_svg(fig)))
    return plots


def reference_bars(
    bars: Sequence[tuple[str, float | None, float | None]], *, title: str, value_label: str
) -> list[Plot]:
    """Horizontal bars of value against reference, one pair per label.

    Parameters
    ----------
    bars
        ``(label, value, reference)`` triples; a missing number leaves its bar out.
    title
        Caption of the figure.
    value_label
        Legend entry of the value bars (the reference is "real reference").
    """
    usable = [
        (label, v, r)
        for label, v, r in bars
        if (v is not None and math.isfinite(v)) or (r is not None and math.isfinite(r))
    ]
    if not usable:
        return []
    n = len(usable)
    fig = new_figure(6.4, 0.9 + 0.32 * n)
    ax = fig.add_subplot()
    ys = list(range(n))
    nan = math.nan
    values = [nan if v is None else v for _, v, _ in usable]
    refs = [nan if r is None else r for _, _, r in usable]
    ax.barh([y - 0.2 for y in ys], values, height=0.4, color=_SYNTH, label=value_label)
    ax.barh([y + 0.2 for y in ys], refs, height=0.4, color=_REAL, label="real reference")
    ax.set_yticks(ys, [safe_label(label) for label, _, _ in usable], fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0, color="#444", linewidth=0.6)
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    tidy_axes(ax)
    return [Plot(title=title, svg=to_svg(fig))]
