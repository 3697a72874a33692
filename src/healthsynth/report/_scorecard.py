"""The scorecard of an evaluation result: each record judged against its reference.

Plain data only (no plotting, no HTML): :func:`verdict` judges one value, :func:`scorecard` picks
each dimension's headline records. The HTML report (:mod:`._render`) and the console table
(:mod:`._console`) both read it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from healthsynth.errors import ParameterError
from healthsynth.evaluate import DIMENSIONS as _DIMENSIONS

__all__ = [
    "DIMENSIONS",
    "HEADLINES",
    "NEAR_FRACTION",
    "SCALE_FLOOR",
    "VERDICT_ORDER",
    "VERDICT_TEXT",
    "Record",
    "check_result",
    "finite",
    "headlines",
    "scorecard",
    "verdict",
]

#: dimensions in report order (the metrics' own); records of any other dimension follow in
#: their own sections
DIMENSIONS = _DIMENSIONS

#: preferred headline metrics of each dimension, best first (overall records only); when none
#: of them is present the scorecard falls back to what the dimension has (see ``headlines``)
HEADLINES: dict[str, tuple[str, ...]] = {
    "fidelity": ("detection_auc", "column_distance"),
    "utility": ("tstr_auc", "tstr_r2", "tstr"),
    "privacy": ("dcr_median_ratio", "membership_inference_auc", "dcr_median"),
    "diversity": ("coverage", "duplicate_rate"),
    "fairness": ("subgroup_utility_gap_max",),
    "clinical": ("rule_violation_rate", "structure_violation_rate", "rule_violations"),
    "cost": (),
}
_MAX_HEADLINES = 2

#: "near": worse than the reference by at most this fraction of the reference's size
NEAR_FRACTION = 0.10
#: references smaller than this in size count as this size when judging "near"
SCALE_FLOOR = 0.1

VERDICT_TEXT = {
    "within": "within reference",
    "near": "near reference",
    "far": "far from reference",
    "unjudged": "no reference",
    "missing": "no value",
}
VERDICT_ORDER = ("far", "near", "within", "unjudged", "missing")


def verdict(
    value: float | None,
    reference: float | None,
    direction: str,
    interval: Sequence[float | None] | None = None,
) -> str:
    """Judge a value against the real-data reference.

    Parameters
    ----------
    value
        The metric's value on synthetic data.
    reference
        What fresh real data (the holdout) scores on the same metric.
    direction
        ``"higher"`` or ``"lower"`` is better, or ``"target"`` (the reference is the ideal).
    interval
        Optional ``[lo, hi]`` uncertainty interval of ``value``.

    Returns
    -------
    str
        ``"within"``: as good as the reference or better, or the reference lies inside the
        interval; ``"near"``: worse by at most ``NEAR_FRACTION`` of ``max(|reference|,
        SCALE_FLOOR)``; ``"far"``: worse by more; ``"unjudged"``: no reference;
        ``"missing"``: no value.
    """
    if not finite(value):
        return "missing"
    if not finite(reference):
        return "unjudged"
    assert value is not None and reference is not None
    if direction == "higher":
        worse = reference - value
    elif direction == "lower":
        worse = value - reference
    else:
        worse = abs(value - reference)
    if worse <= 0:
        return "within"
    if interval is not None and len(interval) == 2:
        lo, hi = interval
        if finite(lo) and finite(hi) and lo <= reference <= hi:  # type: ignore[operator]
            return "within"
    if worse <= NEAR_FRACTION * max(abs(reference), SCALE_FLOOR):
        return "near"
    return "far"


def finite(x: Any) -> bool:
    """Whether ``x`` is a real, finite number (not a bool)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _number(x: Any) -> float | None:
    return float(x) if finite(x) else None


@dataclass
class Record:
    """A record from the result, with missing fields filled and a verdict."""

    name: str
    dimension: str
    value: float | None
    direction: str
    subgroup: str | None
    interval: tuple[float | None, float | None] | None
    reference: float | None
    seconds: float | None
    details: Mapping[str, Any]
    status: str
    message: str | None
    verdict: str = field(init=False)

    def __post_init__(self) -> None:
        self.verdict = (
            verdict(self.value, self.reference, self.direction, self.interval)
            if self.status == "ok"
            else "missing"
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Record:
        interval = d.get("interval")
        pair = None
        if isinstance(interval, Sequence) and not isinstance(interval, str) and len(interval) == 2:
            pair = (_number(interval[0]), _number(interval[1]))
        subgroup = d.get("subgroup")
        message = d.get("message")
        details = d.get("details")
        return cls(
            name=str(d.get("name", "unnamed")),
            dimension=str(d.get("dimension") or "other"),
            value=_number(d.get("value")),
            direction=str(d.get("direction") or "higher"),
            subgroup=None if subgroup is None else str(subgroup),
            interval=pair,
            reference=_number(d.get("reference")),
            seconds=_number(d.get("seconds")),
            details=details if isinstance(details, Mapping) else {},
            status=str(d.get("status") or "ok"),
            message=None if message is None else str(message),
        )

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.value is not None

    @property
    def label(self) -> str:
        return self.name if self.subgroup is None else f"{self.name} [{self.subgroup}]"

    def gap(self) -> float:
        """How much worse than the reference, relative to its size (for ranking only)."""
        if self.value is None or self.reference is None:
            return -math.inf
        diff = self.value - self.reference
        worse = {"higher": -diff, "lower": diff}.get(self.direction, abs(diff))
        return worse / max(abs(self.reference), SCALE_FLOOR)


def headlines(dimension: str, records: list[Record]) -> tuple[list[Record], str]:
    """The records the scorecard shows for one dimension, and why they were picked."""
    overall = [r for r in records if r.subgroup is None]
    preferred = [r for name in HEADLINES.get(dimension, ()) for r in overall if r.name == name][
        :_MAX_HEADLINES
    ]
    if preferred:
        return preferred, ""
    ok_overall = [r for r in overall if r.ok]
    if ok_overall:
        return ok_overall[:1], ""
    ok_sub = [r for r in records if r.ok]
    if ok_sub:
        return [max(ok_sub, key=lambda r: r.gap())], "worst subgroup"
    return records[:1], ""


def check_result(result: Any) -> list[Mapping[str, Any]]:
    """The record dicts of ``result``, or a clear error when it is not an evaluation result."""
    if not isinstance(result, Mapping) or not isinstance(result.get("records"), list):
        got = type(result).__name__
        raise ParameterError(
            "result must be the dict that healthsynth.evaluate returns, with a 'records' list; "
            f"got a {got}" + (" without a 'records' list" if isinstance(result, Mapping) else "")
        )
    bad = [i for i, r in enumerate(result["records"]) if not isinstance(r, Mapping)]
    if bad:
        raise ParameterError(
            f"result['records'][{bad[0]}] is not a dict; every record must be a record dict"
        )
    return result["records"]  # type: ignore[no-any-return]


def scorecard(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The report's scorecard as plain data, without drawing plots (for consoles and logs).

    Returns one dict per dimension: ``dimension``, ``verdict`` (the worst of its headlines)
    and ``headlines`` (dicts with ``name``, ``subgroup``, ``value``, ``interval``,
    ``reference``, ``direction``, ``verdict``, ``status`` and ``message``).
    """
    records = [Record.from_dict(r) for r in check_result(result)]
    extra = sorted({r.dimension for r in records} - set(DIMENSIONS))
    out = []
    for dim in (*DIMENSIONS, *extra):
        heads, _ = headlines(dim, [r for r in records if r.dimension == dim])
        verdicts = [h.verdict for h in heads]
        out.append(
            {
                "dimension": dim,
                "verdict": next((v for v in VERDICT_ORDER if v in verdicts), "missing"),
                "headlines": [
                    {
                        "name": h.name,
                        "subgroup": h.subgroup,
                        "value": h.value,
                        "interval": h.interval,
                        "reference": h.reference,
                        "direction": h.direction,
                        "verdict": h.verdict,
                        "status": h.status,
                        "message": h.message,
                    }
                    for h in heads
                ],
            }
        )
    return out
