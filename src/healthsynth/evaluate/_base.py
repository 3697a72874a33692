"""The metric contract: what a metric declares about itself, and the records it returns.

A metric is a module with

- ``INFO``, a :class:`MetricInfo`: its registry name, dimension, the data kind it scores
  (``table`` or ``timelines``), a one-line summary, and one :class:`Measure` per record name it
  can return (direction, range, summary, unit). The report's glossary is built from these;
- ``compute(*, real, synthetic, holdout=None, ..., seed=0)``, keyword-only, returning a list of
  :class:`MetricRecord` and never changing its inputs;
- a card in its docstring: a ``Card`` heading followed by the sections of
  :data:`CARD_SECTIONS`, each a line starting with ``Name:``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.errors import ParameterError

__all__ = [
    "CARD_SECTIONS",
    "DIMENSIONS",
    "KINDS",
    "Measure",
    "MetricInfo",
    "MetricRecord",
    "card_sections",
    "features",
    "not_applicable",
    "plain",
]

Direction = Literal["higher", "lower", "target"]
Kind = Literal["table", "timelines"]

#: the order dimensions are reported in
DIMENSIONS = ("fidelity", "utility", "privacy", "diversity", "fairness", "clinical", "cost")
#: the kinds of data a metric can score: one table, or multi-table patient timelines
KINDS: tuple[Kind, ...] = ("table", "timelines")
_DIRECTIONS = ("higher", "lower", "target")
_BETTER = {
    "higher": "higher is better",
    "lower": "lower is better",
    "target": "closer to the reference is better",
}

#: the sections every metric card has, each a line ``Name: ...`` after the ``Card`` heading:
#: what it computes, the range of its values, which way is better, what it is compared with,
#: what it cannot see, and where the idea comes from
CARD_SECTIONS = ("What", "Range", "Direction", "Reference", "Limitations", "Citation")


@dataclass(frozen=True)
class Measure:
    """One figure a metric reports: the records of that ``name``.

    Parameters
    ----------
    name
        The record name (``tstr_auc``).
    direction
        ``higher`` or ``lower`` is better, or ``target`` (the reference is the ideal).
    summary
        One sentence: what the figure is and how to read it (the report's glossary line).
    low, high
        The range of its values; ``-inf`` / ``inf`` where unbounded.
    unit
        The unit of the figure (``s``, ``MiB``, ``tokens`` ...), or None for a pure number.
    """

    name: str
    direction: Direction
    summary: str
    low: float = -math.inf
    high: float = math.inf
    unit: str | None = None

    def __post_init__(self) -> None:
        if self.direction not in _DIRECTIONS:
            raise ParameterError(
                f"measure '{self.name}' has direction {self.direction!r}; use one of "
                f"{', '.join(_DIRECTIONS)}"
            )
        if not self.low <= self.high:
            raise ParameterError(
                f"measure '{self.name}' has range [{self.low}, {self.high}]; low must not "
                "exceed high"
            )

    @property
    def range(self) -> tuple[float, float]:
        """``(low, high)``."""
        return (self.low, self.high)

    def range_text(self) -> str:
        """The range for people: ``0 to 1``, ``at least 0``, ``at most 1`` or ``any value``."""
        lo, hi = (None if math.isinf(x) else f"{x:g}" for x in self.range)
        if lo is not None and hi is not None:
            return f"{lo} to {hi}"
        if lo is not None:
            return f"at least {lo}"
        return f"at most {hi}" if hi is not None else "any value"

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the range (a small float tolerance allowed)."""
        tol = 1e-9 * max(1.0, abs(value))
        return self.low - tol <= value <= self.high + tol

    def describe(self) -> dict[str, Any]:
        """Plain data for the report's glossary: summary, range, direction and unit."""
        return {
            "summary": self.summary,
            "range": self.range_text(),
            "direction": self.direction,
            "better": _BETTER[self.direction],
            "unit": self.unit,
        }


@dataclass(frozen=True)
class MetricInfo:
    """What a metric module declares about itself (its ``INFO``).

    Parameters
    ----------
    name
        The metric's registry name (``tstr``), what ``evaluate(metrics=[...])`` takes.
    dimension
        ``fidelity``, ``utility``, ``privacy``, ``diversity``, ``fairness``, ``clinical`` or
        ``cost`` (a plugin may name another; the report gives it a section of its own).
    kind
        The data it scores: ``table`` or ``timelines``.
    summary
        One sentence: what the metric measures.
    measures
        The figures it reports, one per record name; the first is its headline, whose
        direction and range are the metric's.
    """

    name: str
    dimension: str
    kind: Kind
    summary: str
    measures: tuple[Measure, ...]

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ParameterError(
                f"metric '{self.name}' has kind {self.kind!r}; use one of {', '.join(KINDS)}"
            )
        if not self.measures:
            raise ParameterError(
                f"metric '{self.name}' declares no measures; declare one per record name it returns"
            )
        names = [m.name for m in self.measures]
        if len(set(names)) != len(names):
            raise ParameterError(f"metric '{self.name}' declares a measure name twice: {names}")

    @property
    def direction(self) -> Direction:
        """The headline measure's direction."""
        return self.measures[0].direction

    @property
    def range(self) -> tuple[float, float]:
        """The headline measure's range."""
        return self.measures[0].range

    @property
    def record_names(self) -> tuple[str, ...]:
        """Every record name the metric can return.

        Its measures, and its own name: a record that stands for the whole metric (one saying
        that it cannot apply, or that it failed) carries the metric's name.
        """
        return (*(m.name for m in self.measures), self.name)

    def measure(self, record_name: str) -> Measure | None:
        """The measure of ``record_name``, or None when the metric declares none by that name."""
        return next((m for m in self.measures if m.name == record_name), None)

    def describe(self, record_name: str) -> dict[str, Any] | None:
        """Glossary data for one of this metric's record names (None for a foreign name)."""
        m = self.measure(record_name)
        if m is None and record_name == self.name:
            head = self.measures[0]
            m = Measure(self.name, head.direction, self.summary, head.low, head.high)
        if m is None:
            return None
        return {"metric": self.name, "dimension": self.dimension, **m.describe()}


def card_sections(doc: str | None) -> dict[str, str]:
    """The card in a metric's docstring: section name -> text.

    Only the :data:`CARD_SECTIONS` found after the ``Card`` heading are returned; a section
    runs from its ``Name:`` line to the next line that starts another ``Name:``.
    """
    if not doc:
        return {}
    match = re.search(r"^Card\n-{4,}\n(.*)", doc, flags=re.S | re.M)
    if match is None:
        return {}
    out: dict[str, str] = {}
    current: str | None = None
    for line in match.group(1).splitlines():
        head = re.match(r"^([A-Z][A-Za-z ]*):\s*(.*)$", line)
        if head is not None:
            current = head.group(1)
            if current in CARD_SECTIONS:
                out[current] = head.group(2).strip()
                continue
            current = None
        elif current is not None and line.strip():
            out[current] = f"{out[current]} {line.strip()}".strip()
    return out


@dataclass
class MetricRecord:
    """One number a metric produced.

    ``reference`` is what fresh real data (the holdout, scored as if it were synthetic) gets on
    the same metric, so every figure can be read next to the ceiling.
    """

    name: str
    dimension: str
    value: float | None
    direction: Direction
    subgroup: str | None = None
    interval: tuple[float, float] | None = None
    reference: float | None = None
    seconds: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"  # ok | not_applicable | failed
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serializable dict."""
        d = asdict(self)
        d["interval"] = list(self.interval) if self.interval is not None else None
        return plain(d)


def plain(obj: Any) -> Any:
    """``obj`` as plain JSON data: string keys, lists, Python numbers, NaN and inf as None."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def not_applicable(name: str, dimension: str, why: str, **fields: Any) -> MetricRecord:
    """A record saying that a metric cannot apply to this data, and why."""
    fields.setdefault("direction", "higher")
    return MetricRecord(
        name=name, dimension=dimension, value=None, status="not_applicable", message=why, **fields
    )


def features(
    frames: Iterable[pd.DataFrame], schema: Schema, *, exclude: Iterable[str] = ()
) -> tuple[list[np.ndarray], list[str], np.ndarray]:
    """Encode tables for tree models: numbers as floats (NaN kept), categories as codes.

    Returns the matrices, the column names, and the categorical-feature mask.
    """
    exclude = set(exclude)
    cols = [c for c in schema.modelled if c.name not in exclude]
    frames = list(frames)
    out = [np.empty((len(f), len(cols))) for f in frames]
    cat_mask = np.zeros(len(cols), bool)
    for j, c in enumerate(cols):
        if c.kind in ("categorical", "boolean"):
            cat_mask[j] = True
            cats = list(c.categories or [])
            for f, m in zip(frames, out, strict=True):
                codes = pd.Categorical(f[c.name], categories=cats).codes.astype(float)
                m[:, j] = np.where(codes < 0, np.nan, codes)
        elif c.kind == "datetime":
            for f, m in zip(frames, out, strict=True):
                t = pd.to_datetime(f[c.name], errors="coerce")
                m[:, j] = (t - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy(float)
        else:
            for f, m in zip(frames, out, strict=True):
                m[:, j] = pd.to_numeric(f[c.name], errors="coerce").to_numpy(float)
    return out, [c.name for c in cols], cat_mask
