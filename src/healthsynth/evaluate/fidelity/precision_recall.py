"""α-precision and β-recall: typical synthetic rows, and covered real rows.

Card
----
What: rows are encoded with the Gower-style encoder (:mod:`healthsynth.data._distance`) and
compared in that space with Euclidean distance. The α-support of the real rows is the ball about
their mean that holds a share α of them; α-precision(α) is the share of synthetic rows inside it.
β-recall(β) is the share of real rows inside the β-support of the synthetic rows (the ball about
the synthetic mean holding a share β of them). For a faithful generator both curves follow the
diagonal; the scores are ``1 - 2 * mean |curve(a) - a|`` over a = 0.05, 0.10, …, 0.95.
Range: 0 to 1.
Direction: higher is better.
Reference: the same scores for the real holdout in place of the synthetic rows.
Details: both curves, for plotting.
Limitations: Alaa et al. embed the rows with a one-class network so that the supports are
hyperspheres; here the encoded space is used directly, so the supports are balls in that space —
a coarse radial summary that cannot see structure at equal distance from the centre. At most
``max_rows`` rows of each table are used.
Citation: Alaa, van Breugel, Saveliev & van der Schaar, "How faithful is your synthetic data?",
ICML 2022.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.data._distance import RowEncoder
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord, not_applicable

__all__ = ["INFO", "compute", "precision_recall_curves"]

_LEVELS = np.round(np.arange(0.05, 0.96, 0.05), 2)


INFO = MetricInfo(
    name="precision_recall",
    dimension="fidelity",
    kind="table",
    summary="Whether synthetic rows are typical of the real data (α-precision) and cover it "
    "(β-recall).",
    measures=(
        Measure(
            "alpha_precision",
            "higher",
            "How faithfully synthetic rows fall inside the real data's typical region "
            "(α-precision curve summarised to one score); 1 = ideal.",
            low=0,
            high=1,
        ),
        Measure(
            "beta_recall",
            "higher",
            "How well synthetic rows cover the real data's region (β-recall curve summarised "
            "to one score); 1 = ideal.",
            low=0,
            high=1,
        ),
    ),
)


def precision_recall_curves(
    real_x: np.ndarray, other_x: np.ndarray
) -> tuple[float, float, list[float], list[float]]:
    """α-precision and β-recall scores and curves of encoded rows ``other_x`` against ``real_x``."""
    c_r = real_x.mean(axis=0)
    c_o = other_x.mean(axis=0)
    d_rr = np.linalg.norm(real_x - c_r, axis=1)
    d_or = np.linalg.norm(other_x - c_r, axis=1)
    d_oo = np.linalg.norm(other_x - c_o, axis=1)
    d_ro = np.linalg.norm(real_x - c_o, axis=1)
    prec = [float(np.mean(d_or <= np.quantile(d_rr, a))) for a in _LEVELS]
    rec = [float(np.mean(d_ro <= np.quantile(d_oo, b))) for b in _LEVELS]
    p_score = 1 - 2 * float(np.mean(np.abs(np.array(prec) - _LEVELS)))
    r_score = 1 - 2 * float(np.mean(np.abs(np.array(rec) - _LEVELS)))
    return p_score, r_score, prec, rec


def compute(
    *,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
    schema: Schema,
    seed: int = 0,
    max_rows: int = 10_000,
) -> list[MetricRecord]:
    """α-precision and β-recall records (higher is better)."""
    if len(synthetic) < 2 or len(real) < 2:
        why = "α-precision and β-recall need at least 2 rows in each table"
        return [
            not_applicable("alpha_precision", "fidelity", why),
            not_applicable("beta_recall", "fidelity", why),
        ]
    rng = np.random.default_rng(seed)

    def sub(df: pd.DataFrame) -> pd.DataFrame:
        if len(df) <= max_rows:
            return df
        return df.iloc[rng.choice(len(df), max_rows, replace=False)]

    enc = RowEncoder(schema).fit(real)
    rx = enc.transform(sub(real))
    p, r, pc, rc = precision_recall_curves(rx, enc.transform(sub(synthetic)))
    p_ref = r_ref = None
    if holdout is not None and len(holdout) >= 2:
        p_ref, r_ref, _, _ = precision_recall_curves(rx, enc.transform(sub(holdout)))
    levels = _LEVELS.tolist()
    return [
        MetricRecord(
            name="alpha_precision",
            dimension="fidelity",
            value=p,
            direction="higher",
            reference=p_ref,
            details={"levels": levels, "curve": pc},
        ),
        MetricRecord(
            name="beta_recall",
            dimension="fidelity",
            value=r,
            direction="higher",
            reference=r_ref,
            details={"levels": levels, "curve": rc},
        ),
    ]
