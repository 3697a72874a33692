"""The one runner of metrics, for tables and timelines alike.

:func:`healthsynth.evaluate.evaluate` and :func:`healthsynth.evaluate.evaluate_timelines`
prepare their inputs into a context (the keyword arguments metrics may take), then call
:func:`run_metrics` and :func:`result`, so both return the same plain data: ``records``,
``seconds`` and ``meta`` (with a ``glossary`` of the record names, from the metrics' ``INFO``).
"""

from __future__ import annotations

import inspect
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from threadpoolctl import threadpool_limits

from healthsynth.evaluate._base import Kind, MetricRecord, plain
from healthsynth.evaluate._registry import registry

__all__ = ["get_metric", "result", "run_metric", "run_metrics"]


def get_metric(name: str) -> Callable[..., list[MetricRecord]]:
    """The ``compute`` function of metric ``name`` (of either data kind)."""
    return registry.compute(name)


def _arguments(fn: Callable[..., Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``context`` that ``fn`` takes (all of it when it takes ``**kwargs``)."""
    params = inspect.signature(fn).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return dict(context)
    return {k: v for k, v in context.items() if k in params}


def run_metric(name: str, **context: Any) -> list[MetricRecord]:
    """Run one metric, timing it; a failure becomes a ``failed`` record instead of a crash.

    ``context`` may hold more than the metric takes (``rules``, ``training``, ``sampling`` ...):
    each metric receives only the keyword arguments its ``compute`` declares.
    """
    info = registry.info(name)
    fn = registry.compute(name)
    start = time.perf_counter()
    try:
        # scikit-learn's OpenMP threads (gradient boosting) spin against each other when
        # another process holds a core: one detection fit took 49.5 s instead of 0.5 s on two
        # busy cores. The metrics' models are small, so one thread each (docs/evaluation.md).
        with threadpool_limits(limits=1, user_api="openmp"):
            records = list(fn(**_arguments(fn, context)))
    except Exception as e:  # a broken metric must not sink the whole evaluation
        records = [
            MetricRecord(
                name=name,
                dimension=info.dimension,
                value=None,
                direction=info.direction,
                status="failed",
                message=f"{type(e).__name__}: {e}",
            )
        ]
    took = round(time.perf_counter() - start, 3)
    for r in records:
        r.seconds = took
    return records


def run_metrics(
    names: Sequence[str], context: Mapping[str, Any]
) -> tuple[list[MetricRecord], dict[str, dict[str, Any]]]:
    """Run ``names`` in order over ``context``; returns the records and their glossary.

    The glossary maps each record name that occurs to what the metric that returned it
    declares about it (summary, range, direction, unit; see :class:`MetricInfo`).
    """
    records: list[MetricRecord] = []
    glossary: dict[str, dict[str, Any]] = {}
    for name in names:
        got = run_metric(name, **context)  # looked up at call time, so it can be wrapped
        info = registry.info(name)
        for r in got:
            if r.name not in glossary:
                found = info.describe(r.name) or registry.describe(r.name, info.kind)
                if found is not None:
                    glossary[r.name] = found
        records += got
    return records, glossary


def result(
    records: Sequence[MetricRecord],
    glossary: Mapping[str, Any],
    *,
    kind: Kind,
    start: float,
    seed: int,
    training: Mapping[str, Any] | None,
    warnings: Sequence[str],
    **meta: Any,
) -> dict[str, Any]:
    """The plain result of an evaluation: ``records``, ``seconds`` and ``meta``.

    ``meta`` gets the creation time, ``kind``, ``seed``, the model's headline figures, the
    input ``warnings``, the ``glossary`` and the package versions around the fields given.
    """
    full = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "kind": kind,
        "seed": seed,
        **meta,
        "model": model_summary(training),
        "warnings": list(warnings),
        "glossary": dict(glossary),
        "versions": versions(),
    }
    return {
        "records": [r.to_dict() for r in records],
        "seconds": round(time.perf_counter() - start, 3),
        "meta": plain(full),
    }


def model_summary(training: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The training record's headline figures (no per-epoch history) for the report header."""
    if not training:
        return None
    keep: dict[str, Any] = {
        k: v for k, v in training.items() if isinstance(v, (str, int, float, bool))
    }
    if isinstance(training.get("params"), Mapping):
        keep["params"] = {
            k: v for k, v in training["params"].items() if v is not None and k != "verbose"
        }
    dp = training.get("dp")
    if isinstance(dp, Mapping):  # differential privacy: the budget spent and how it was counted
        for k in ("epsilon", "epsilon_target", "delta", "accountant", "noise_multiplier", "unit"):
            if dp.get(k) is not None:
                keep[f"dp_{k}"] = dp[k]
    return keep


def versions() -> dict[str, Any]:
    """Versions of Python and of the packages that shape the figures."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, Any] = {"python": platform.python_version()}
    for pkg in ("healthsynth", "numpy", "pandas", "scikit-learn", "anonymeter"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out
