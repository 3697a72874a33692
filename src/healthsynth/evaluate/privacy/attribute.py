"""Attribute inference: how well the synthetic data reveal a person's sensitive value.

Card
----
What: for each sensitive column (``schema.sensitive``), an attacker who knows all the other
modelled columns (the quasi-identifiers) of a person looks up the nearest synthetic row on those
columns (Gower-style distance, :mod:`healthsynth.data._distance`) and guesses that row's
sensitive value. The value is the attack's success on training-row targets: accuracy for a
categorical or boolean column (a missing value is a value of its own), 1 − |error| / spread for a
numeric one (spread: the training rows' 1st–99th percentile range; the score is clipped to
[0, 1]; targets missing the value are skipped, a missing guess scores 0).
Range: [0, 1].
Direction: lower.
Reference: the same attack on holdout-row targets, people who were not in the training data.
The gap value − reference is the risk due to membership; the reference itself is what the data's
statistics reveal to anyone (an inference that is often legitimate, and not a leak).
``details["baseline"]`` is the success of guessing the synthetic data's majority class (or mean)
for everybody, an attacker who ignores the quasi-identifiers.
Sample sizes: ≤ 2,000 training and ≤ 2,000 holdout targets, ≤ 10,000 synthetic rows (seeded
subsamples; sizes in ``details``). Interval: 95 % bootstrap over the training targets.
Limitations: one nearest neighbour (k = 1, ties broken by the search order) is a simple attacker;
a model trained on the synthetic data may infer more. The attacker is assumed to know every
other column exactly. Without a holdout the gap cannot be read and only the value is given.
Without a declared sensitive column the metric does not apply.
Citation: Stadler, Oprisanu & Troncoso 2022, "Synthetic Data — Anonymisation Groundhog Day"
(USENIX Security); Giomi et al. 2023, "A Unified Framework for Quantifying Privacy Risk in
Synthetic Data" (Anonymeter), PoPETs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.data._distance import RowEncoder, nearest_neighbours
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord, not_applicable
from healthsynth.evaluate.privacy._sample import subsample

__all__ = ["INFO", "compute"]

NAME = "attribute_inference"
_MISSING = "<missing>"
_BOOTSTRAP = 200


INFO = MetricInfo(
    name=NAME,
    dimension="privacy",
    kind="table",
    summary="How well the synthetic data reveal a person's sensitive value.",
    measures=(
        Measure(
            NAME,
            "lower",
            "Success of guessing a sensitive value of a training row from its other columns "
            "via the nearest synthetic row; the reference is the same against holdout rows.",
            low=0,
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
    max_targets: int = 2000,
    max_rows: int = 10_000,
) -> list[MetricRecord]:
    """Nearest-synthetic-row attribute inference for every sensitive column.

    Parameters
    ----------
    real
        The generator's training rows (the attacked people).
    synthetic
        Generated rows, all the attacker sees besides the targets' quasi-identifiers.
    holdout
        Real rows the generator never saw (the reference targets).
    schema
        The table's schema; ``schema.sensitive`` names the attacked columns.
    seed
        Seed of the target draw, the subsampling and the bootstrap.
    max_targets
        At most this many training and as many holdout targets.
    max_rows
        At most this many synthetic rows are searched.

    Returns
    -------
    list of MetricRecord
        One ``attribute_inference`` record per sensitive column (subgroup = the column).
    """
    modelled = {c.name for c in schema.modelled}
    sensitive = [s for s in schema.sensitive if s in modelled]
    if not sensitive:
        return [
            not_applicable(
                NAME,
                "privacy",
                "no sensitive column declared: name one with --sensitive (or "
                "schema.with_roles(sensitive=[...]))",
                direction="lower",
            )
        ]
    rng = np.random.default_rng(seed)
    if len(real) == 0 or len(synthetic) == 0:
        return [
            not_applicable(NAME, "privacy", "no training or synthetic rows", subgroup=s)
            for s in sensitive
        ]
    syn = subsample(synthetic, max_rows, rng)
    train_t = subsample(real, max_targets, rng)
    hold_t = None if holdout is None or len(holdout) == 0 else subsample(holdout, max_targets, rng)
    sizes = {
        "n_train_targets": len(train_t),
        "n_holdout_targets": 0 if hold_t is None else len(hold_t),
        "n_synthetic": len(syn),
        "n_synthetic_total": len(synthetic),
    }
    return [
        _attack_column(col, real, syn, train_t, hold_t, schema, rng, sizes) for col in sensitive
    ]


def _attack_column(
    col: str,
    real: pd.DataFrame,
    syn: pd.DataFrame,
    train_t: pd.DataFrame,
    hold_t: pd.DataFrame | None,
    schema: Schema,
    rng: np.random.Generator,
    sizes: dict[str, Any],
) -> MetricRecord:
    numeric = schema[col].kind in ("numeric", "integer", "datetime")
    quasi = [c.name for c in schema.modelled if c.name != col and c.name in real.columns]
    if quasi:
        enc = RowEncoder(schema, columns=quasi).fit(real)
        sx = enc.transform(syn)
    if numeric:
        s_vals = _as_float(syn[col], schema[col].kind)
        r_vals = _as_float(real[col], schema[col].kind)
        present = r_vals[np.isfinite(r_vals)]
        spread = 1.0
        if len(present):
            lo, hi = np.percentile(present, [1, 99])
            spread = float(hi - lo) or float(present.max() - present.min()) or 1.0
        s_present = s_vals[np.isfinite(s_vals)]
        guess_all = float(np.mean(s_present)) if len(s_present) else np.nan
    else:
        s_lab = _labels(syn[col])
        guess_all = pd.Series(s_lab).mode().iloc[0]

    def guesses(targets: pd.DataFrame) -> np.ndarray:
        if not quasi:  # nothing to link on: the attacker can only guess the marginal
            return np.full(len(targets), guess_all, dtype=float if numeric else object)
        _, idx = nearest_neighbours(enc.transform(targets), sx, k=1)
        return (s_vals if numeric else s_lab)[idx[:, 0]]

    def success(targets: pd.DataFrame, guess: np.ndarray) -> np.ndarray:
        """Per-target success in [0, 1] (NaN where a numeric truth is missing)."""
        if numeric:
            truth = _as_float(targets[col], schema[col].kind)
            err = np.abs(np.asarray(guess, float) - truth) / spread
            score = np.clip(1.0 - np.where(np.isnan(err), 1.0, err), 0.0, 1.0)
            return np.where(np.isfinite(truth), score, np.nan)
        return (_labels(targets[col]) == guess).astype(float)

    s_train = success(train_t, guesses(train_t))
    s_train = s_train[np.isfinite(s_train)]
    if len(s_train) == 0:
        return not_applicable(
            NAME,
            "privacy",
            f"column '{col}' has no values among the training targets",
            subgroup=col,
            direction="lower",
        )
    base = success(train_t, np.full(len(train_t), guess_all, dtype=float if numeric else object))
    details: dict[str, Any] = {
        **sizes,
        "kind": "numeric" if numeric else "categorical",
        "score": "1 - normalized absolute error" if numeric else "accuracy",
        "quasi_identifiers": quasi,
        "baseline": float(np.nanmean(base)) if np.isfinite(base).any() else None,
        "k": 1,
    }
    reference = None
    message = None
    if hold_t is not None:
        s_hold = success(hold_t, guesses(hold_t))
        s_hold = s_hold[np.isfinite(s_hold)]
        reference = float(np.mean(s_hold)) if len(s_hold) else None
        if reference is not None:
            details["gap"] = float(np.mean(s_train)) - reference
    else:
        message = "no holdout: the success on people outside the training data is unavailable"
    boots = [np.mean(rng.choice(s_train, len(s_train))) for _ in range(_BOOTSTRAP)]
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return MetricRecord(
        name=NAME,
        dimension="privacy",
        value=float(np.mean(s_train)),
        direction="lower",
        subgroup=col,
        interval=(float(lo), float(hi)),
        reference=reference,
        details=details,
        message=message,
    )


def _labels(s: pd.Series) -> np.ndarray:
    """Category labels as strings (``1.0`` as ``1``), a missing value as a label of its own."""

    def label(v: Any) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            return _MISSING
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))
        return str(v)

    return np.array([label(v) for v in s.astype(object)], dtype=object)


def _as_float(s: pd.Series, kind: str) -> np.ndarray:
    if kind == "datetime":
        t = pd.to_datetime(s, errors="coerce")
        days = (t - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy(float) / 86400.0
        return np.where(t.isna().to_numpy(), np.nan, days)
    return pd.to_numeric(s, errors="coerce").to_numpy(float)
