"""What every timeline metric does around its score: the three sides, the reference, the record."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from healthsynth.data import Dataset
from healthsynth.evaluate._base import Direction, MetricRecord
from healthsynth.evaluate.timeline._prepare import Timelines, prepared

__all__ = ["headline", "reference", "sides"]


def sides(
    real: Dataset | Timelines,
    synthetic: Dataset | Timelines,
    holdout: Dataset | Timelines | None,
) -> tuple[Timelines, Timelines, Timelines | None]:
    """The training, synthetic and holdout patients as :class:`Timelines` (holdout may be None)."""
    r, s, h = prepared(real), prepared(synthetic), prepared(holdout)
    assert r is not None and s is not None
    return r, s, h


def reference(score: Callable[[Timelines], float], holdout: Timelines | None) -> float | None:
    """``score(holdout)``: None without a holdout, or when the score is not finite."""
    if holdout is None:
        return None
    value = score(holdout)
    return value if np.isfinite(value) else None


def headline(
    name: str,
    dimension: str,
    value: float,
    *,
    direction: Direction,
    reference: float | None,
    details: dict[str, Any],
) -> list[MetricRecord]:
    """A metric's result when it is one record: its value, reference and details."""
    return [
        MetricRecord(
            name=name,
            dimension=dimension,
            value=value,
            direction=direction,
            reference=reference,
            details=details,
        )
    ]
