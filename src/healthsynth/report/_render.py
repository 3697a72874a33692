"""Turning an evaluation result (plain JSON data) into one self-contained HTML page."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from healthsynth.errors import ParameterError
from healthsynth.evaluate import registry
from healthsynth.report import _plots
from healthsynth.report._plots import Plot
from healthsynth.report._scorecard import (
    DIMENSIONS,
    HEADLINES,
    NEAR_FRACTION,
    SCALE_FLOOR,
    VERDICT_ORDER,
    VERDICT_TEXT,
    Record,
    check_result,
    finite,
    headlines,
    scorecard,
    verdict,
)

# DIMENSIONS, HEADLINES, NEAR_FRACTION, SCALE_FLOOR, scorecard and verdict live in ._scorecard
__all__ = [
    "DIMENSIONS",
    "HEADLINES",
    "NEAR_FRACTION",
    "SCALE_FLOOR",
    "render_html",
    "scorecard",
    "scores_json",
    "verdict",
    "write_report",
]

logger = logging.getLogger(__name__)

_NO_GLOSS = "No description registered for this metric; see its module's docstring."


def _glossary(names: Sequence[str], meta: Any) -> list[dict[str, Any]]:
    """The glossary: one entry per record name.

    Each entry is what the result's ``meta["glossary"]`` says of the name, else what the
    registered metrics declare (their ``INFO``), else a pointer to the module's docstring.
    A glossary entry is a dict (``summary``, ``range``, ``better`` ...) or, in results written
    before metrics declared their info, one line of text.
    """
    given = meta.get("glossary") if isinstance(meta, Mapping) else None
    given = given if isinstance(given, Mapping) else {}
    kind = meta.get("kind") if isinstance(meta, Mapping) else None
    out = []
    for name in names:
        entry = given.get(name)
        if entry is None:
            try:
                entry = registry.describe(name, kind if kind in ("table", "timelines") else None)
            except ImportError as e:  # a plugin that no longer loads must not sink the report
                logger.warning("could not describe %s: %s", name, e)
        if isinstance(entry, Mapping):
            out.append(
                {
                    "name": name,
                    "summary": str(entry.get("summary") or _NO_GLOSS),
                    "range": entry.get("range"),
                    "better": entry.get("better"),
                    "unit": entry.get("unit"),
                }
            )
        else:
            text = str(entry) if entry else _NO_GLOSS
            out.append({"name": name, "summary": text, "range": None, "better": None, "unit": None})
    return out


@dataclass
class _Section:
    dimension: str
    records: list[Record]
    plots: list[Plot] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)
    costs: list[dict[str, Any]] = field(default_factory=list)


def _safely(section: _Section, what: str, draw: Callable[[], list[Plot]]) -> None:
    """Add ``draw()``'s plots to ``section``; a failure becomes a note, not a broken report."""
    try:
        section.plots.extend(draw())
    except Exception as e:  # plotting odd data must never sink the report
        logger.warning("could not draw %s: %s", what, e)
        section.notes.append(f"The {what} could not be drawn ({type(e).__name__}: {e}).")


def _first(records: list[Record], name: str, key: str) -> Record | None:
    """The first overall record called ``name`` whose details hold ``key``."""
    for r in records:
        if r.name == name and r.subgroup is None and key in r.details:
            return r
    return None


def _add_plots(section: _Section) -> None:
    recs = section.records
    dist = _first(recs, "column_distance", "distributions")
    if dist is not None:

        def draw_distributions() -> list[Plot]:
            plots, left_out = _plots.distribution_plots(
                dist.details["distributions"], limit=_plots.MAX_COLUMN_PLOTS
            )
            if left_out:
                section.notes.append(
                    f"Only the first {_plots.MAX_COLUMN_PLOTS} columns are plotted; "
                    f"{left_out} more are left out to keep the report small "
                    "(all are in scores.json)."
                )
            return plots

        _safely(section, "per-column distributions", draw_distributions)
    dep = _first(recs, "dependence_difference", "difference")
    if dep is not None:
        _safely(section, "dependence heatmap", lambda: _plots.dependence_heatmap(dep.details))
    traj = _first(recs, "lab_trajectories", "curves")
    if traj is not None:
        _safely(section, "lab trajectories", lambda: _plots.trajectory_plots(traj.details))
    dcr = _first(recs, "dcr_median_ratio", "histogram")
    if dcr is not None:
        _safely(section, "distance histogram", lambda: _plots.dcr_histogram(dcr.details))
    if section.dimension == "utility":
        bars = [(r.label, r.value, r.reference) for r in recs if r.ok]
        _safely(
            section,
            "utility bars",
            lambda: _plots.reference_bars(
                bars, title="Utility: synthetic against real reference", value_label="synthetic"
            ),
        )
    if section.dimension == "fairness":
        names = list(dict.fromkeys(r.name for r in recs if r.ok and r.subgroup is not None))
        for name in names:
            bars = [
                (str(r.subgroup), r.value, r.reference)
                for r in recs
                if r.ok and r.name == name and r.subgroup is not None
            ]
            _safely(
                section,
                f"{name} bars",
                lambda name=name, bars=bars: _plots.reference_bars(  # type: ignore[misc]
                    bars, title=f"{name} by subgroup", value_label="synthetic"
                ),
            )


def _add_tables(section: _Section) -> None:
    rules = _first(section.records, "rule_violation_rate", "rules")
    if rules is not None and isinstance(rules.details["rules"], Sequence):
        section.rules = [dict(r) for r in rules.details["rules"] if isinstance(r, Mapping)]
    if section.dimension == "cost":
        section.costs = [
            {"name": r.label, "value": r.value, "unit": r.details.get("unit")}
            for r in section.records
        ]


def _sections(records: list[Record]) -> list[_Section]:
    extra = sorted({r.dimension for r in records} - set(DIMENSIONS))
    sections = []
    for dim in (*DIMENSIONS, *extra):
        section = _Section(dim, [r for r in records if r.dimension == dim])
        _add_plots(section)
        _add_tables(section)
        sections.append(section)
    return sections


def _scorecard(sections: list[_Section]) -> list[dict[str, Any]]:
    lines = []
    for s in sections:
        heads, why = headlines(s.dimension, s.records)
        verdicts = [h.verdict for h in heads]
        overall = next((v for v in VERDICT_ORDER if v in verdicts), "missing")
        lines.append({"dimension": s.dimension, "headlines": heads, "why": why, "verdict": overall})
    return lines


def _fmt(x: Any) -> str:
    """A number for people: 4 significant digits; None becomes a dash."""
    if x is None:
        return "—"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if not math.isfinite(x):
        return str(x)
    return f"{x:.4g}"


#: units whose figures are counts: shown whole, with thousands separators
_COUNT_UNITS = frozenset({"count", "tokens", "requests", "rows", "patients"})


def _fmt_amount(x: Any, unit: Any = None) -> str:
    """A figure that has a unit (cost records), for people.

    Counts are whole numbers with thousands separators (``182,400``); other amounts keep 4
    significant digits but never take an exponent (``0.0000731``, ``88.5``, ``12,345``). Without
    a unit the figure is formatted like any other.
    """
    if not isinstance(unit, str) or not finite(x):
        return _fmt(x)
    if unit in _COUNT_UNITS and float(x).is_integer():
        return f"{int(x):,}"
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    text = f"{x:.{max(0, 3 - math.floor(math.log10(abs(x))))}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _fmt_interval(pair: Any) -> str:
    if not pair:
        return "—"
    return f"[{_fmt(pair[0])}, {_fmt(pair[1])}]"


def _fmt_seconds(x: Any) -> str:
    return "—" if not finite(x) else f"{x:.2f} s"


_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("healthsynth.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters.update(num=_fmt, amount=_fmt_amount, interval=_fmt_interval, seconds=_fmt_seconds)


def _meta(result: Mapping[str, Any]) -> dict[str, Any]:
    meta = result.get("meta")
    meta = dict(meta) if isinstance(meta, Mapping) else {}
    tables = []
    for role in ("real", "synthetic", "holdout"):
        t = meta.get(role)
        t = t if isinstance(t, Mapping) else {}
        tables.append(
            {
                "role": role,
                "source": t.get("source"),
                "rows": t.get("rows"),
                "columns": t.get("columns"),
                "given": bool(t),
            }
        )
    versions = meta.get("versions")
    model = meta.get("model")
    sensitive = meta.get("sensitive")
    warnings = meta.get("warnings")
    return {
        "tables": tables,
        "target": meta.get("target"),
        "sensitive": [str(s) for s in sensitive] if isinstance(sensitive, list) else [],
        "created": meta.get("created"),
        "seed": meta.get("seed"),
        "versions": sorted(versions.items()) if isinstance(versions, Mapping) else [],
        "model": sorted(model.items()) if isinstance(model, Mapping) else [],
        "warnings": [str(w) for w in warnings] if isinstance(warnings, list) else [],
        "seconds": result.get("seconds"),
    }


def render_html(result: Mapping[str, Any]) -> str:
    """Render an evaluation result as one self-contained HTML page.

    Parameters
    ----------
    result
        What :func:`healthsynth.evaluate` returns: ``{"records": [...], "seconds": ...,
        "meta": {...}}``. Any subset of records works, including none; ``meta`` may be partial
        or missing. The glossary at the end describes each record name as ``meta["glossary"]``
        says (what :func:`healthsynth.evaluate` writes there), else as the registered metrics'
        ``INFO`` declares.

    Returns
    -------
    str
        The page: inline CSS and inline SVG plots, no scripts and no network assets. Its
        ``<main>`` element carries ``data-plot-count``, the number of plots drawn.

    Raises
    ------
    ParameterError
        If ``result`` is not a dict with a ``records`` list of dicts.
    """
    records = [Record.from_dict(r) for r in check_result(result)]
    sections = _sections(records)
    names = list(dict.fromkeys(r.name for r in records))
    glossary = _glossary(names, result.get("meta"))
    return _ENV.get_template("report.html.j2").render(
        meta=_meta(result),
        scorecard=_scorecard(sections),
        sections=sections,
        plot_count=sum(len(s.plots) for s in sections),
        n_records=len(records),
        n_ok=sum(r.ok for r in records),
        glossary=glossary,
        verdict_text=VERDICT_TEXT,
        near_percent=round(NEAR_FRACTION * 100),
        scale_floor=SCALE_FLOOR,
        max_column_plots=_plots.MAX_COLUMN_PLOTS,
    )


def _json_default(obj: Any) -> Any:
    item = getattr(obj, "item", None)  # numpy scalars
    if callable(item):
        return item()
    raise TypeError(f"{type(obj).__name__} is not JSON-serializable")


def _no_nan(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {str(k): _no_nan(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_no_nan(v) for v in obj]
    return obj


def scores_json(result: Mapping[str, Any]) -> str:
    """The result as indented, strict JSON (NaN and infinities become ``null``)."""
    try:
        plain = json.loads(json.dumps(result, default=_json_default))
        return json.dumps(_no_nan(plain), indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    except (TypeError, ValueError) as e:
        raise ParameterError(
            f"result is not plain JSON-serializable data ({e}); pass what evaluate returns"
        ) from None


def write_report(result: Mapping[str, Any], out_dir: str | Path) -> Path:
    """Write ``report.html`` and ``scores.json`` into ``out_dir``.

    The folder is written whole to a temporary path and renamed, so a failure leaves nothing
    half-written; an existing folder is replaced only when it holds an earlier output of
    healthsynth and nothing else.

    Parameters
    ----------
    result
        What :func:`healthsynth.evaluate` returns.
    out_dir
        Folder to write: absent, empty, or an earlier healthsynth output.

    Returns
    -------
    Path
        The path of ``report.html``.
    """
    from healthsynth.data._outputs import atomic_folder

    out = Path(out_dir)
    html = render_html(result)
    scores = scores_json(result)
    with atomic_folder(out, action="write the report", kind="report") as tmp:
        (tmp / "scores.json").write_text(scores, encoding="utf-8")
        (tmp / "report.html").write_text(html, encoding="utf-8")
    return out / "report.html"
