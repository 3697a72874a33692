"""Augmentation lift: whether adding synthetic rows to the real ones helps a model.

Card
----
What: the TSTR model (:mod:`tstr`) is trained on the real training rows alone and on the real
rows plus as many synthetic rows (at most as many as there are real ones), and both are scored
on the real holdout (ROC AUC for classification, R² for regression). The value is the score
with augmentation; ``details["lift"]`` is the difference.
Range: as the score.
Direction: higher is better.
Reference: the score of the model trained on the real rows alone (lift 0).
Not applicable in the same cases as TSTR.
Limitations: one mixing ratio (1:1) and one model family; a lift within the bootstrap noise of
the holdout is no lift.
Citation: data augmentation with synthetic records, e.g. Das et al. 2022 (conditional synthetic
data for class imbalance); synthcity's "augmentation" benchmark.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord, not_applicable
from healthsynth.evaluate.utility.tstr import bootstrap, fit_predict, score, why_not

__all__ = ["INFO", "compute"]


INFO = MetricInfo(
    name="augmentation_lift",
    dimension="utility",
    kind="table",
    summary="Whether adding synthetic rows to the real ones helps a model on the holdout.",
    measures=(
        Measure(
            "augmentation_auc",
            "higher",
            "Holdout ROC AUC of a model trained on real plus synthetic rows; the reference is "
            "the model trained on real rows only.",
            low=0,
            high=1,
        ),
        Measure(
            "augmentation_r2",
            "higher",
            "Holdout R² of a model trained on real plus synthetic rows; the reference is the "
            "model trained on real rows only.",
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
    max_rows: int = 20_000,
    cache: dict[Any, Any] | None = None,
) -> list[MetricRecord]:
    """Score of real + synthetic training rows, with the real-only score as reference."""
    why = why_not(schema, real, holdout)
    if why is not None:
        return [not_applicable(INFO.name, INFO.dimension, why)]
    assert holdout is not None
    # the real-only model is TSTR's reference model (same rows, same seed)
    base = fit_predict(real, holdout, schema, seed=seed, max_train_rows=max_rows, cache=cache)
    rng = np.random.default_rng(seed)
    if len(real) > max_rows:
        real = real.iloc[rng.choice(len(real), max_rows, replace=False)]
    n_syn = min(len(synthetic), len(real))
    extra = synthetic.iloc[np.random.default_rng(seed + 1).choice(len(synthetic), n_syn, False)]
    mixed = pd.concat([real, extra], ignore_index=True)
    aug = fit_predict(mixed, holdout, schema, seed=seed, max_train_rows=2 * max_rows)
    name = "auc" if aug.task == "classification" else "r2"
    value, reference = score(aug, name), score(base, name)
    return [
        MetricRecord(
            name=f"augmentation_{name}",
            dimension="utility",
            value=value,
            direction="higher",
            interval=bootstrap(aug, name, seed=seed),
            reference=reference,
            details={"lift": value - reference, "real_rows": len(real), "synthetic_rows": n_syn},
        )
    ]
