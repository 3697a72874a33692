"""Running the portfolio of metrics over one synthetic table."""

from __future__ import annotations

import platform
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from healthsynth.data import Schema
from healthsynth.errors import DataError, ParameterError
from healthsynth.evaluate._base import METRICS, _plain, run_metric
from healthsynth.evaluate._prepare import prepare

__all__ = ["evaluate"]


def evaluate(
    *,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
    schema: Schema | None = None,
    target: str | None = None,
    sensitive: Iterable[str] | None = None,
    rules: Any = None,
    training: Mapping[str, Any] | None = None,
    sampling: Mapping[str, Any] | None = None,
    examples: pd.DataFrame | None = None,
    metrics: Sequence[str] | None = None,
    seed: int = 0,
    sources: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Score ``synthetic`` against the ``real`` training rows and a real ``holdout``.

    Parameters
    ----------
    real
        The rows the generator was trained on.
    synthetic
        The generated rows.
    holdout
        Real rows the generator never saw. Most metrics use it as the reference ("what fresh
        real data scores"); without it those metrics say they cannot apply.
    schema
        The table's schema; inferred from ``real`` when not given.
    target, sensitive
        Roles to set on the schema: the column utility metrics predict, and the columns that
        define patient subgroups for fairness and attribute-inference metrics.
    rules
        A :class:`healthsynth.knowledge.RuleSet` for the clinical-validity metric.
    training, sampling
        The model folder's training record and the sampling run record, for the cost metric.
    examples
        The real rows that were placed in the generator's prompts (for a prompted LLM: a subset
        of ``real`` with its columns). The ``regurgitation`` metric then also reports how many
        synthetic rows copy one of them exactly or nearly; without them it compares with all
        training rows only.
    metrics
        Names of the metrics to run (default: all of :data:`METRICS`).
    seed
        Seed for every subsample, split and model inside the metrics.
    sources
        How to name the tables in the report (e.g. file paths), by ``real``/``synthetic``/
        ``holdout``/``examples``.

    Returns
    -------
    dict
        Plain JSON-serializable data: ``records`` (one dict per
        :class:`~healthsynth.evaluate.MetricRecord`), ``seconds`` and ``meta`` (what was
        compared, with which settings and versions, and any warnings about the input).
    """
    names = list(metrics) if metrics is not None else list(METRICS)
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ParameterError(
            f"metric '{unknown[0]}' is not known; known metrics: {', '.join(sorted(METRICS))}"
        )
    start = time.perf_counter()
    prep = prepare(
        real=real,
        synthetic=synthetic,
        holdout=holdout,
        schema=schema,
        target=target,
        sensitive=sensitive,
    )
    prompt_examples = _examples(examples, prep.real, prep.schema)
    context = {
        "real": prep.real,
        "synthetic": prep.synthetic,
        "holdout": prep.holdout,
        "schema": prep.schema,
        "seed": seed,
        "rules": rules,
        "training": dict(training) if training else None,
        "sampling": dict(sampling) if sampling else None,
        "examples": prompt_examples,
        # fitted models shared between metrics of this one evaluation (e.g. the TSTR models)
        "cache": {},
    }
    records = []
    for n in names:
        records += run_metric(n, **context)
    sources = dict(sources or {})
    meta = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seed": seed,
        "real": _describe(prep.real, sources.get("real")),
        "synthetic": _describe(prep.synthetic, sources.get("synthetic")),
        "holdout": _describe(prep.holdout, sources.get("holdout"))
        if prep.holdout is not None
        else None,
        "examples": _describe(prompt_examples, sources.get("examples"))
        if prompt_examples is not None
        else None,
        "target": prep.schema.target,
        "sensitive": prep.schema.sensitive,
        "schema": prep.schema.to_dict(),
        "rules": rules.to_dict() if rules is not None and hasattr(rules, "to_dict") else None,
        "model": _model_summary(training),
        "warnings": prep.warnings,
        "versions": _versions(),
    }
    return {
        "records": [r.to_dict() for r in records],
        "seconds": round(time.perf_counter() - start, 3),
        "meta": _plain(meta),
    }


def _examples(
    examples: pd.DataFrame | None, real: pd.DataFrame, schema: Schema
) -> pd.DataFrame | None:
    """The prompt examples restricted to the compared columns, or a clear error.

    Only the modelled columns must be there: identifier and free-text columns are never sent.
    """
    if examples is None:
        return None
    if not isinstance(examples, pd.DataFrame):
        raise ParameterError(
            f"examples must be a pandas DataFrame of the rows placed in prompts; got "
            f"{type(examples).__name__}"
        )
    needed = [c.name for c in schema.modelled if c.name in real.columns]
    absent = [c for c in needed if c not in examples.columns]
    if absent:
        raise DataError(
            f"the prompt examples lack column(s) {', '.join(map(repr, map(str, absent)))} of the "
            "real table; pass the real rows that were placed in prompts, with all their columns"
        )
    keep = [c for c in real.columns if c in examples.columns]
    return examples[keep].reset_index(drop=True)


def _model_summary(training: Mapping[str, Any] | None) -> dict[str, Any] | None:
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
    return keep


def _describe(df: pd.DataFrame | None, source: str | None) -> dict[str, Any]:
    assert df is not None
    return {"rows": int(len(df)), "columns": int(df.shape[1]), "source": source}


def _versions() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, Any] = {"python": platform.python_version()}
    for pkg in ("healthsynth", "numpy", "pandas", "scikit-learn", "anonymeter"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out
