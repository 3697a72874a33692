"""Per-subgroup utility: which patient groups the synthetic data serves worse.

Card
----
What: the TSTR models of :mod:`..utility.tstr` (one trained on synthetic rows, one on real
training rows) are scored on the holdout rows of each subgroup of each sensitive column: ROC AUC
for classification, R² for regression. One record per subgroup: value = train-on-synthetic score,
reference = train-on-real score, ``details["gap"]`` = reference − value. One summary record per
sensitive column, ``subgroup_utility_gap_max``: the largest gap, and which group it is.
Range: as the score.
Direction: higher is better (the summary: lower is better).
Reference: the train-on-real score within the same subgroup; the summary has none (a gap of 0
is the ideal).
Interval: a 95% bootstrap over the subgroup's holdout rows.
Not applicable without sensitive columns or in the cases where TSTR is; subgroups with fewer than
10 holdout rows or a single class are reported as not applicable.
Limitations: small subgroups give wide intervals: read the gap next to the interval.
Citation: per-group utility of synthetic data, e.g. Bhanot et al. 2021; Chen et al. 2021
("Synthetic data in machine learning for medicine and healthcare"), on subgroup performance gaps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord, not_applicable
from healthsynth.evaluate.fairness._groups import subgroups
from healthsynth.evaluate.fairness.subgroup_shares import NO_SENSITIVE
from healthsynth.evaluate.utility.tstr import bootstrap, fit_predict, score, why_not

__all__ = ["INFO", "compute"]

_MIN_ROWS = 10


INFO = MetricInfo(
    name="subgroup_utility",
    dimension="fairness",
    kind="table",
    summary="Which patient groups the synthetic data serves worse: train-on-synthetic scores "
    "within each subgroup of the holdout.",
    measures=(
        Measure(
            "subgroup_utility_gap_max",
            "lower",
            "Largest gap between train-on-real and train-on-synthetic scores over the "
            "subgroups of a sensitive column.",
        ),
        Measure(
            "subgroup_tstr_auc",
            "higher",
            "Train-on-synthetic ROC AUC within one subgroup of the holdout; the reference is "
            "the train-on-real score.",
            low=0,
            high=1,
        ),
        Measure(
            "subgroup_tstr_r2",
            "higher",
            "Train-on-synthetic R² within one subgroup of the holdout; the reference is the "
            "train-on-real score.",
            high=1,
        ),
    ),
)


def compute(
    *,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
    schema: Schema,
    seed: int = 0,
    cache: dict[Any, Any] | None = None,
) -> list[MetricRecord]:
    """Train-on-synthetic vs train-on-real scores per subgroup of the holdout."""
    sens = [c for c in schema.sensitive if c in real.columns]
    if not sens:
        return [not_applicable("subgroup_utility", "fairness", NO_SENSITIVE)]
    why = why_not(schema, real, holdout)
    if why is not None:
        return [not_applicable("subgroup_utility", "fairness", why)]
    assert holdout is not None
    syn = fit_predict(synthetic, holdout, schema, seed=seed, cache=cache)
    ref = fit_predict(real, holdout, schema, seed=seed, cache=cache)
    name = "auc" if syn.task == "classification" else "r2"
    test = holdout.iloc[syn.rows].reset_index(drop=True)
    out = []
    for col in sens:
        if col == schema.target:
            continue
        gaps: dict[str, float] = {}
        for label, mask in subgroups(schema, real, col):
            idx = np.flatnonzero(mask(test))
            ok = len(idx) >= _MIN_ROWS and (name == "r2" or len(np.unique(syn.y[idx])) >= 2)
            if not ok:
                out.append(
                    not_applicable(
                        f"subgroup_tstr_{name}",
                        "fairness",
                        f"fewer than {_MIN_ROWS} holdout rows, or a single class, in this group",
                        subgroup=label,
                        details={"holdout_rows": int(len(idx))},
                    )
                )
                continue
            v = 0.5 if (syn.single_class and name == "auc") else score(syn, name, idx)
            rv = score(ref, name, idx)
            gaps[label] = rv - v
            out.append(
                MetricRecord(
                    name=f"subgroup_tstr_{name}",
                    dimension="fairness",
                    value=v,
                    direction="higher",
                    subgroup=label,
                    interval=bootstrap(syn, name, seed=seed, idx=idx),
                    reference=rv,
                    details={"gap": rv - v, "holdout_rows": int(len(idx))},
                )
            )
        if gaps:
            worst = max(gaps, key=lambda k: gaps[k])
            out.append(
                MetricRecord(
                    name="subgroup_utility_gap_max",
                    dimension="fairness",
                    value=gaps[worst],
                    direction="lower",
                    subgroup=col,
                    details={"worst_group": worst, "gaps": gaps},
                )
            )
    return out
