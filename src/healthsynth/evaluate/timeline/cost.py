"""Cost of the synthetic timelines: time, memory, tokens and money.

Card
----
What: the figures of the model's training record (``fit_seconds``, ``fit_cpu_seconds``,
``peak_rss_mb``, ``n_parameters``, and for API backends ``tokens_in``, ``tokens_out``,
``cost_usd``) and of the sampling run record (``seconds``, ``peak_rss_mb``, tokens, cost), as
the single-table ``cost`` metric reads them, plus ``sample_patients_per_second``: the record's
``patients_per_second``, or the synthetic patients divided by the sampling seconds. One record
per figure, its unit in ``details["unit"]``; no reference.
Range: 0 upwards, in the figure's unit.
Direction: lower is better, except patients (and rows) per second.
Reference: none; nothing real to compare with. Compare runs with each other.
Not applicable when neither record is given.
Limitations: figures are as measured on the machine that made the data; compare them only
between runs on the same machine.
Citation: as the single-table ``cost`` metric (:mod:`healthsynth.evaluate.cost.resources`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from healthsynth.data import Dataset
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord, not_applicable
from healthsynth.evaluate.cost import resources
from healthsynth.evaluate.timeline._prepare import Timelines

__all__ = ["INFO", "compute"]

NAME = "timeline_cost"
DIMENSION = "cost"

INFO = MetricInfo(
    name=NAME,
    dimension=DIMENSION,
    kind="timelines",
    summary="What the synthetic timelines took to make: time, memory, tokens and money.",
    measures=(
        *resources.MEASURES,
        Measure(
            "sample_patients_per_second",
            "higher",
            "Synthetic patients generated per second.",
            low=0,
            unit="patients/s",
        ),
    ),
)


def compute(
    *,
    real: Dataset | Timelines,
    synthetic: Dataset | Timelines,
    training: Mapping[str, Any] | None = None,
    sampling: Mapping[str, Any] | None = None,
) -> list[MetricRecord]:
    """One record per cost figure found in the training and sampling records.

    Parameters
    ----------
    real
        The training patients (unused; kept for the common signature).
    synthetic
        The generated patients (their number gives patients per second).
    training, sampling
        The model's training record and the sampling run record.

    Returns
    -------
    list of MetricRecord
        One record per figure, or one ``timeline_cost`` record saying none was given.
    """
    if not training and not sampling:
        return [
            not_applicable(
                NAME,
                DIMENSION,
                "no training or sampling record given (pass training=... and sampling=...)",
                direction="lower",
            )
        ]
    out = resources.compute(
        real=None,  # type: ignore[arg-type]
        synthetic=None,  # type: ignore[arg-type]
        schema=None,  # type: ignore[arg-type]
        training=training,
        sampling=sampling,
    )
    if sampling:
        rate = _number(sampling.get("patients_per_second"))
        seconds = _number(sampling.get("seconds"))
        if isinstance(synthetic, Timelines):
            n = synthetic.n_patients_total
        else:
            n = synthetic.n_patients
        if rate is None and seconds is not None and seconds > 0 and n:
            rate = n / seconds
        if rate is not None:
            out.append(
                MetricRecord(
                    name="sample_patients_per_second",
                    dimension=DIMENSION,
                    value=rate,
                    direction="higher",
                    details={"unit": "patients/s", "source": "sampling"},
                )
            )
    if not out:
        return [
            not_applicable(
                NAME,
                DIMENSION,
                "the training and sampling records hold no cost figures",
                direction="lower",
            )
        ]
    return out


def _number(x: Any) -> float | None:
    ok = isinstance(x, (int, float)) and not isinstance(x, bool)
    return float(x) if ok else None
