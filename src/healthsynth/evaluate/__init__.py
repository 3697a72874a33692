"""Metrics for synthetic data, grouped by dimension, behind one contract.

Every metric is a module with a keyword-only ``compute(*, real, synthetic, holdout=None,
schema, seed=0)`` (plus, where it needs them, ``rules``, ``training`` or ``sampling``) that
returns :class:`MetricRecord` objects, and a card in its docstring. Dimensions: fidelity,
utility, privacy, diversity, fairness, clinical, cost.
:func:`evaluate` runs a list of them and returns plain JSON-serializable data.
"""

import sys as _sys
import types as _types

from healthsynth.evaluate._base import (
    DIMENSIONS,
    METRICS,
    MetricRecord,
    get_metric,
    not_applicable,
    run_metric,
)
from healthsynth.evaluate._runner import evaluate
from healthsynth.evaluate.timeline import evaluate_timelines

__all__ = [
    "DIMENSIONS",
    "METRICS",
    "MetricRecord",
    "evaluate",
    "evaluate_timelines",
    "get_metric",
    "not_applicable",
    "run_metric",
]


class _CallableModule(_types.ModuleType):
    """Lets ``healthsynth.evaluate(real=..., synthetic=...)`` call :func:`evaluate`."""

    def __call__(self, **kwargs):  # noqa: ANN003, ANN204
        return evaluate(**kwargs)


_sys.modules[__name__].__class__ = _CallableModule
