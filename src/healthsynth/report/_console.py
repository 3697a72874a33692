"""The scorecard as a terminal table (the CLI and the demo print it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table
from rich.text import Text

from healthsynth.report._scorecard import scorecard

__all__ = ["scorecard_table"]

_STYLE = {"within": "green", "near": "yellow", "far": "red", "unjudged": "", "missing": "dim"}


def _num(x: Any) -> str:
    if x is None:
        return "—"
    return "0" if abs(x) < 1e-12 else f"{x:.3g}"


def scorecard_table(result: Mapping[str, Any]) -> Table:
    """One row per headline metric: value, interval and reference, and the verdict."""
    table = Table(title="Scorecard (reference: what real data the generator never saw scores)")
    table.add_column("dimension")
    table.add_column("metric", overflow="fold", min_width=14)
    for name in ("synthetic", "95% CI", "reference"):
        table.add_column(name, justify="right")
    table.add_column("verdict")
    for line in scorecard(result):
        for i, h in enumerate(line["headlines"]):
            name = Text(h["name"] + (f" [{h['subgroup']}]" if h["subgroup"] else ""))
            iv = h["interval"]
            interval = f"{_num(iv[0])} – {_num(iv[1])}" if iv else ""
            v = h["verdict"]
            shown = v if h["status"] == "ok" else (h["message"] or h["status"])[:60]
            style = _STYLE.get(v, "")
            table.add_row(
                line["dimension"] if i == 0 else "",
                name,
                _num(h["value"]),
                interval,
                _num(h["reference"]),
                Text(shown, style=style),
            )
    return table
