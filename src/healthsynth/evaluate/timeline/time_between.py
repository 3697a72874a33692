"""Time between events.

Card
----
What: for every patient, the days on which anything happened (any table), sorted and counted
once each; the gaps between consecutive days are pooled over patients. The value is the
two-sample Kolmogorov–Smirnov statistic between the real training patients' gaps and the
synthetic patients' gaps. The same statistic per event table (gaps between days with an event
in that table) is in ``details``.
Range: 0 (same distribution) to 1.
Direction: lower is better.
Reference: the same statistic for the real holdout patients against the training patients.
Details: quantiles (10th, 25th, 50th, 75th, 90th) of the gaps on both sides, the number of
gaps, the share of patients with at least two event days, and the per-table statistics.
Sample size: at most ``max_gaps`` (100,000) gaps per side, a seeded subsample.
Not applicable when either side has fewer than 10 gaps.
Limitations: pooled gaps weigh patients by how many events they have; the gap distribution says
nothing about which events follow which (``event_order``) and is blind to a timeline played
backwards; events on the same day count as one day.
Citation: Smirnov 1948 (the two-sample Kolmogorov–Smirnov statistic); Pang et al. 2024
(CEHR-GPT), a generator built to keep the time between a patient's events, which this metric
checks from the outside.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from healthsynth.data import Dataset
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord, not_applicable
from healthsynth.evaluate.timeline._prepare import Timelines
from healthsynth.evaluate.timeline._records import headline, reference, sides

__all__ = ["INFO", "compute", "gaps"]

NAME = "time_between_events"
DIMENSION = "fidelity"
_MIN_GAPS = 10
_QUANTILES = (10, 25, 50, 75, 90)


INFO = MetricInfo(
    name=NAME,
    dimension=DIMENSION,
    kind="timelines",
    summary="Whether the gaps between a patient's event days are as in the real patients.",
    measures=(
        Measure(
            NAME,
            "lower",
            "Kolmogorov–Smirnov statistic between the gaps separating a patient's event days, "
            "real against synthetic; 0 = same distribution.",
            low=0,
            high=1,
        ),
    ),
)


def gaps(tl: Timelines, table: str | None = None) -> np.ndarray:
    """Days between consecutive distinct event days of each patient, pooled."""
    ev = tl.events if table is None else tl.events[tl.events["table"] == table]
    days = pd.DataFrame({"p": ev["p"].to_numpy(), "t": ev["t"].to_numpy()}).drop_duplicates()
    days = days.sort_values(["p", "t"], kind="stable")
    p, t = days["p"].to_numpy(), days["t"].to_numpy()
    same = p[1:] == p[:-1]
    return (t[1:] - t[:-1])[same]  # type: ignore[no-any-return]


def _cap(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return x if len(x) <= n else rng.choice(x, n, replace=False)


def _score(
    real: Timelines, other: Timelines, *, max_gaps: int, seed: int
) -> tuple[float, dict[str, Any]]:
    rng = np.random.default_rng(seed)
    a, b = _cap(gaps(real), max_gaps, rng), _cap(gaps(other), max_gaps, rng)
    if len(a) < _MIN_GAPS or len(b) < _MIN_GAPS:
        return float("nan"), {"n_gaps_real": len(a), "n_gaps_synthetic": len(b)}
    per_table = {}
    for table in real.dataset.event_tables:
        ta, tb = gaps(real, table), gaps(other, table)
        ta, tb = _cap(ta, max_gaps, rng), _cap(tb, max_gaps, rng)
        if len(ta) >= _MIN_GAPS and len(tb) >= _MIN_GAPS:
            per_table[table] = float(ks_2samp(ta, tb).statistic)
    return float(ks_2samp(a, b).statistic), {
        "n_gaps_real": len(a),
        "n_gaps_synthetic": len(b),
        "quantiles": list(_QUANTILES),
        "quantiles_real": np.percentile(a, _QUANTILES).tolist(),
        "quantiles_synthetic": np.percentile(b, _QUANTILES).tolist(),
        "patients_with_two_days_real": _two_days(real),
        "patients_with_two_days_synthetic": _two_days(other),
        "ks_by_table": per_table,
    }


def _two_days(tl: Timelines) -> float:
    n_days = tl.events.groupby("p")["t"].nunique()
    return float((n_days >= 2).sum() / max(tl.n, 1))


def compute(
    *,
    real: Dataset | Timelines,
    synthetic: Dataset | Timelines,
    holdout: Dataset | Timelines | None = None,
    seed: int = 0,
    max_gaps: int = 100_000,
) -> list[MetricRecord]:
    """KS statistic of the gaps between a patient's event days (lower is better).

    Parameters
    ----------
    real
        The training patients.
    synthetic
        The generated patients.
    holdout
        Real patients the generator never saw; scored the same way as the reference.
    seed
        Seed of the subsample of gaps.
    max_gaps
        Compare at most this many gaps per side.

    Returns
    -------
    list of MetricRecord
        One ``time_between_events`` record.
    """
    r, s, h = sides(real, synthetic, holdout)
    value, details = _score(r, s, max_gaps=max_gaps, seed=seed)
    if not np.isfinite(value):
        return [
            not_applicable(
                NAME,
                DIMENSION,
                f"too few gaps between event days to compare (real {details['n_gaps_real']}, "
                f"synthetic {details['n_gaps_synthetic']}; at least {_MIN_GAPS} each)",
                direction="lower",
                details=details,
            )
        ]
    ref = reference(lambda tl: _score(r, tl, max_gaps=max_gaps, seed=seed)[0], h)
    return headline(NAME, DIMENSION, value, direction="lower", reference=ref, details=details)
