"""Metrics for synthetic patient timelines (multi-table datasets with event times).

Each metric is a module with an ``INFO`` and a keyword-only ``compute(*, real, synthetic,
holdout=None, seed=0, ...)`` over :class:`~healthsynth.data.Dataset` objects that returns
:class:`~healthsynth.evaluate.MetricRecord` objects, and a card in its docstring; the metrics
are registered for the ``timelines`` kind in :data:`healthsynth.evaluate.registry`.
:func:`evaluate_timelines` runs a list of them (default: all of them) and returns the same plain
data as :func:`healthsynth.evaluate.evaluate`, so the HTML report renders it.
``docs/timelines-evaluation.md`` describes every metric.
"""

from healthsynth.evaluate.timeline._evaluate import TIMELINE_METRICS, evaluate_timelines

__all__ = ["TIMELINE_METRICS", "evaluate_timelines"]
