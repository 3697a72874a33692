"""Cost: what the synthetic data took to make — time, memory, tokens, requests and money.

Card
----
What: figures read from the model folder's training record (``training.json``: ``fit_seconds``,
``fit_cpu_seconds``, ``peak_rss_mb``, ``n_parameters``) and from the sampling run record
(``SYNTHETIC.run.json`` written by ``healthsynth sample``: ``seconds``, ``rows_per_second``,
``peak_rss_mb``), and, for LLM backends, what either record holds of: ``tokens_in`` and
``tokens_out`` (tokens sent and received), ``cost_usd`` (estimated price; absent when no price
is known), ``requests`` (LLM requests sent), ``cached_requests`` (requests answered from the
response cache) and ``llm_seconds`` (wall seconds spent waiting on the endpoint). One record per
figure, named ``fit_…`` or ``sample_…`` after its record (``fit_llm_requests``,
``sample_llm_cached_requests``, ``sample_cost_usd`` …), with its unit in ``details["unit"]``
(``s``, ``MiB``, ``count``, ``tokens``, ``requests``, ``USD``, ``rows/s``); no reference (nothing
real to compare with). A figure that is missing, ``None`` or not a number is left out.
Range: 0 upwards, in the figure's unit.
Direction: lower is better, except rows per second and cached requests (a request answered
from the cache costs no tokens, money or waiting).
Reference: none; nothing real to compare with. Compare runs with each other.
Not applicable when neither record is given (``--model MODEL_DIR``; the run record is found
next to the synthetic file).
Limitations: figures are as measured on the machine that made the data; compare them only
between runs on the same machine. Prices are estimates from a price table, not a bill; waiting
time depends on the endpoint's load as much as on the generator.
Citation: compute and token cost as an evaluation axis of synthetic data, as called for in
the review behind this project.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from healthsynth.data import Schema
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord, not_applicable

__all__ = ["INFO", "MEASURES", "compute"]

#: (record key, record name, unit, direction, glossary line) read from the training record
_TRAINING = (
    ("fit_seconds", "fit_wall_seconds", "s", "lower", "Wall-clock time the generator took to fit."),
    ("fit_cpu_seconds", "fit_cpu_seconds", "s", "lower", "CPU time the generator took to fit."),
    ("peak_rss_mb", "fit_peak_memory_mb", "MiB", "lower", "Peak memory while fitting."),
    (
        "n_parameters",
        "model_parameters",
        "count",
        "lower",
        "Number of the fitted model's parameters.",
    ),
    ("tokens_in", "fit_tokens_in", "tokens", "lower", "LLM tokens sent while fitting."),
    ("tokens_out", "fit_tokens_out", "tokens", "lower", "LLM tokens received while fitting."),
    (
        "cost_usd",
        "fit_cost_usd",
        "USD",
        "lower",
        "Estimated price of the LLM calls made while fitting, in US dollars.",
    ),
    ("requests", "fit_llm_requests", "requests", "lower", "LLM requests sent while fitting."),
    (
        "cached_requests",
        "fit_llm_cached_requests",
        "requests",
        "higher",
        "LLM requests answered from the response cache while fitting.",
    ),
    (
        "llm_seconds",
        "fit_llm_seconds",
        "s",
        "lower",
        "Wall-clock time spent waiting on the LLM endpoint while fitting.",
    ),
)
#: the same for the sampling run record
_SAMPLING = (
    ("seconds", "sample_wall_seconds", "s", "lower", "Wall-clock time the sampling run took."),
    (
        "rows_per_second",
        "sample_rows_per_second",
        "rows/s",
        "higher",
        "Synthetic rows generated per second of sampling.",
    ),
    ("peak_rss_mb", "sample_peak_memory_mb", "MiB", "lower", "Peak memory while sampling."),
    ("tokens_in", "sample_tokens_in", "tokens", "lower", "LLM tokens sent while sampling."),
    ("tokens_out", "sample_tokens_out", "tokens", "lower", "LLM tokens received while sampling."),
    (
        "cost_usd",
        "sample_cost_usd",
        "USD",
        "lower",
        "Estimated price of the LLM calls made while sampling, in US dollars.",
    ),
    ("requests", "sample_llm_requests", "requests", "lower", "LLM requests sent while sampling."),
    (
        "cached_requests",
        "sample_llm_cached_requests",
        "requests",
        "higher",
        "LLM requests answered from the response cache while sampling.",
    ),
    (
        "llm_seconds",
        "sample_llm_seconds",
        "s",
        "lower",
        "Wall-clock time spent waiting on the LLM endpoint while sampling.",
    ),
)

#: one measure per figure of either record
MEASURES = tuple(
    Measure(name, direction, summary, low=0, unit=unit)  # type: ignore[arg-type]
    for _key, name, unit, direction, summary in (*_TRAINING, *_SAMPLING)
)

INFO = MetricInfo(
    name="cost",
    dimension="cost",
    kind="table",
    summary="What the synthetic data took to make: time, memory, tokens, requests and money.",
    measures=MEASURES,
)


def compute(
    *,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: Schema,
    training: Mapping[str, Any] | None = None,
    sampling: Mapping[str, Any] | None = None,
) -> list[MetricRecord]:
    """One record per cost figure found in the training and sampling records."""
    if not training and not sampling:
        return [
            not_applicable(
                "cost",
                "cost",
                "no training or sampling record given (pass --model MODEL_DIR; the sampling "
                "record SYNTHETIC.run.json is read when it sits next to the synthetic file)",
                direction="lower",
            )
        ]
    out = []
    for rec, table, source in (
        (training, _TRAINING, "training"),
        (sampling, _SAMPLING, "sampling"),
    ):
        if not rec:
            continue
        for key, name, unit, direction, _summary in table:
            v = rec.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                out.append(
                    MetricRecord(
                        name=name,
                        dimension="cost",
                        value=float(v),
                        direction=direction,  # type: ignore[arg-type]
                        details={"unit": unit, "source": source},
                    )
                )
    if training and isinstance(training.get("generator"), str):
        for r in out:
            r.details["generator"] = training["generator"]
    return out
