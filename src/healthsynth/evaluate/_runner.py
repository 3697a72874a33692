"""Running a portfolio of metrics."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pandas as pd

from healthsynth.data import Schema, infer_schema
from healthsynth.evaluate._base import METRICS, run_metric

__all__ = ["evaluate"]


def evaluate(
    *,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
    schema: Schema | None = None,
    metrics: Sequence[str] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Score ``synthetic`` against the ``real`` training rows (and a real ``holdout``).

    Returns a plain dict: ``{"records": [...], "seconds": ...}`` where each record is a
    :class:`~healthsynth.evaluate.MetricRecord` as a dict.
    """
    if schema is None:
        schema = infer_schema(real)
    names = list(metrics) if metrics is not None else list(METRICS)
    for n in names:
        if n not in METRICS:
            from healthsynth.errors import ParameterError

            raise ParameterError(
                f"metric '{n}' is not known; known metrics: {', '.join(sorted(METRICS))}"
            )
    start = time.perf_counter()
    records = []
    for n in names:
        records += run_metric(
            n, real=real, synthetic=synthetic, holdout=holdout, schema=schema, seed=seed
        )
    return {
        "records": [r.to_dict() for r in records],
        "seconds": round(time.perf_counter() - start, 3),
    }
