"""Scoring one synthetic table: the inputs lined up, then the portfolio run by the runner."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from healthsynth.data import Schema
from healthsynth.errors import DataError, ParameterError
from healthsynth.evaluate._prepare import metric_context, prepare
from healthsynth.evaluate._registry import registry
from healthsynth.evaluate._runner import result, run_metrics

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
        Names of the metrics to run (default: every table metric of
        :data:`~healthsynth.evaluate.registry`, in its order).
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
        compared, with which settings and versions, any warnings about the input, and a
        ``glossary`` of the record names).

    Raises
    ------
    ParameterError
        For an unknown metric name (the message lists the valid ones) or a timeline metric.
    DataError
        When the tables leave nothing to compare.
    """
    names = registry.resolve(metrics, kind="table")
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
    context = metric_context(
        prep,
        seed=seed,
        rules=rules,
        training=training,
        sampling=sampling,
        examples=prompt_examples,
    )
    records, glossary = run_metrics(names, context)
    sources = dict(sources or {})
    return result(
        records,
        glossary,
        kind="table",
        start=start,
        seed=seed,
        training=training,
        warnings=prep.warnings,
        real=_describe(prep.real, sources.get("real")),
        synthetic=_describe(prep.synthetic, sources.get("synthetic")),
        holdout=_describe(prep.holdout, sources.get("holdout")),
        examples=_describe(prompt_examples, sources.get("examples")),
        target=prep.schema.target,
        sensitive=prep.schema.sensitive,
        schema=prep.schema.to_dict(),
        rules=rules.to_dict() if rules is not None and hasattr(rules, "to_dict") else None,
    )


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


def _describe(df: pd.DataFrame | None, source: str | None) -> dict[str, Any] | None:
    if df is None:
        return None
    return {"rows": int(len(df)), "columns": int(df.shape[1]), "source": source}
