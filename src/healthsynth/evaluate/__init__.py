"""Metrics for synthetic data, grouped by dimension, behind one contract and one registry.

Every metric is a module with an ``INFO`` (a :class:`MetricInfo`: name, dimension, data kind,
summary, and the direction, range and summary of each record name it returns), a keyword-only
``compute(*, real, synthetic, holdout=None, schema, seed=0)`` (plus, where it needs them,
``rules``, ``training``, ``sampling`` ...) that returns :class:`MetricRecord` objects, and a
card in its docstring (:data:`CARD_SECTIONS`). Dimensions: fidelity, utility, privacy,
diversity, fairness, clinical, cost. :data:`registry` finds metrics of both data kinds by
name; :func:`evaluate` (tables) and :func:`evaluate_timelines` run them through one runner and
return plain JSON-serializable data.
"""

import sys as _sys
import types as _types

from healthsynth.evaluate._base import (
    CARD_SECTIONS,
    DIMENSIONS,
    KINDS,
    Measure,
    MetricInfo,
    MetricRecord,
    card_sections,
    not_applicable,
)
from healthsynth.evaluate._evaluate import evaluate
from healthsynth.evaluate._registry import MetricRegistry, registry
from healthsynth.evaluate._runner import get_metric, run_metric
from healthsynth.evaluate.timeline import TIMELINE_METRICS, evaluate_timelines

#: name -> module of every table metric (a live view of :data:`registry`, kept for callers
#: that test membership or list names; ``registry.names("table")`` says the same)
METRICS = registry.mapping("table")

__all__ = [
    "CARD_SECTIONS",
    "DIMENSIONS",
    "KINDS",
    "METRICS",
    "TIMELINE_METRICS",
    "Measure",
    "MetricInfo",
    "MetricRecord",
    "MetricRegistry",
    "card_sections",
    "evaluate",
    "evaluate_timelines",
    "get_metric",
    "not_applicable",
    "registry",
    "run_metric",
]


class _CallableModule(_types.ModuleType):
    """Lets ``healthsynth.evaluate(real=..., synthetic=...)`` call :func:`evaluate`."""

    def __call__(self, **kwargs):  # noqa: ANN003, ANN204
        return evaluate(**kwargs)


_sys.modules[__name__].__class__ = _CallableModule
