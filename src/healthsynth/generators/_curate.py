"""CLLM-style curation of generated rows with learning dynamics (Data-IQ).

Any generator's rows can be curated (prompted-llm does it by default; the function takes only
real rows, synthetic rows and a schema). It uses a model fitted on the real rows, so it is a
step with a privacy cost of its own: measure it (``docs/small-data.md``).

**What.** A gradient-boosting classifier is trained on the *real* rows to predict the target
column from the other modelled columns. Every synthetic row ``(x, y)`` is then scored at each
boosting iteration ``e`` by ``p_e``, the predicted probability of the row's *own* label ``y``
given ``x``. Two numbers summarise the trajectory:

* confidence ``C = mean_e p_e``;
* aleatoric uncertainty ``A = mean_e p_e (1 - p_e)``.

A row is *easy* when ``C >= 1 - confidence_threshold`` and ``A`` is low, *hard* when
``C <= confidence_threshold`` and ``A`` is low (the real rows confidently say its label is
wrong), and *ambiguous* otherwise. Easy and ambiguous rows are kept; hard rows are dropped.
"Low" means at or below the ``uncertainty_percentile``-th percentile of the aleatoric values of
the synthetic rows that the classifier scored.

**Why.** An LLM prompted with a few real rows writes plausible-looking rows whose label may not
follow from their features. CLLM (Seedat et al., 2024) showed that dropping the rows a model
trained on the small real set confidently contradicts improves downstream utility in low-data
regimes, while keeping ambiguous rows preserves diversity.

**Thresholds and their source.**

* ``confidence_threshold = 0.2``: CLLM's ``curation_ythresh=0.2`` (easy: ``C >= 0.8``, hard:
  ``C <= 0.2``), the default of ``data_centric_curation`` in ``src/curation.py`` of
  github.com/seedatnabeel/CLLM and the value its ``tutorial.ipynb`` passes (the same notebook is
  in github.com/vanderschaarlab/CLLM).
* ``uncertainty_percentile = 50``: the median split on aleatoric uncertainty of Data-IQ
  (Seedat et al., 2022), which CLLM's curation builds on; CLLM's ``get_groups`` still declares
  ``percentile_thresh = 50`` next to a commented-out percentile cut. The CLLM code that runs
  uses an absolute cut instead (``curation_xthresh=0.2`` by default; its tutorial passes ``0``,
  which selects an "adaptive" cut of ``0.75 * (max(A) - min(A))``). A percentile is used here
  because it does not depend on how many classes there are or on how peaked the scores are;
  ``uncertainty_percentile=100`` reduces the rule to confidence alone.
* The classifier is scikit-learn's ``HistGradientBoostingClassifier`` with ``max_iter=100``
  iterations (CLLM uses ``XGBClassifier(n_estimators=100)``); early stopping is off so every run
  has ``max_iter`` stages.

**Limitations.** The classifier is trained on the same few real rows the LLM was shown, so with
tiny data its judgement is noisy: it can drop rows that are merely unusual (a rare but valid
combination) and keep wrong ones it has no evidence about. Rows whose label never occurs in the
real rows are always *hard*. Only categorical or boolean targets are curated; regression targets,
tables without a target and too few real rows per class skip curation (every row kept and marked
*unchecked*, with the reason in :attr:`Curation.skipped`). Identifier and free-text columns are
not used as features.

References
----------
N. Seedat, N. Huynh, B. van Breugel, M. van der Schaar. "Curated LLM: Synergy of LLMs and Data
Curation for tabular augmentation in low-data regimes." ICML 2024. arXiv:2312.12112.

N. Seedat, J. Crabbé, I. Bica, M. van der Schaar. "Data-IQ: Characterizing subgroups with
heterogeneous outcomes in tabular data." NeurIPS 2022. arXiv:2210.13043.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.errors import DataError, ParameterError
from healthsynth.generators._curate_model import _Codes, _encode_features, _label_probabilities

__all__ = [
    "DEFAULT_CONFIDENCE_THRESHOLD",
    "DEFAULT_UNCERTAINTY_PERCENTILE",
    "GROUPS",
    "MIN_ROWS_PER_CLASS",
    "Curation",
    "curate",
]

logger = logging.getLogger(__name__)

#: CLLM's ``curation_ythresh``: easy rows have confidence >= 0.8, hard rows <= 0.2.
DEFAULT_CONFIDENCE_THRESHOLD = 0.2
#: Data-IQ's median split on aleatoric uncertainty.
DEFAULT_UNCERTAINTY_PERCENTILE = 50.0
#: Every class of the target needs at least this many real rows for curation to apply.
MIN_ROWS_PER_CLASS = 5
#: The groups a synthetic row can fall in (``unchecked``: curation did not judge it).
GROUPS = ("easy", "ambiguous", "hard", "unchecked")

_CURATED_KINDS = ("categorical", "boolean")
_FEATURE_KINDS = ("numeric", "integer", "categorical", "boolean", "datetime")


@dataclass
class Curation:
    """The verdict of :func:`curate` on each synthetic row.

    Parameters
    ----------
    keep
        Boolean per synthetic row: ``True`` for rows to keep (easy, ambiguous, unchecked).
    group
        Object array with ``"easy"``, ``"ambiguous"``, ``"hard"`` or ``"unchecked"`` per row
        (``"unchecked"`` when curation was skipped or the row has no label).
    confidence
        Mean predicted probability of each row's own label over the boosting iterations
        (NaN for unchecked rows).
    aleatoric
        Mean of ``p (1 - p)`` over the boosting iterations (NaN for unchecked rows).
    skipped
        Why curation did not apply, in one sentence, or ``None`` when it did.
    target
        The target column the classifier predicted, or ``None``.
    confidence_threshold, uncertainty_percentile, max_iter
        The settings used.
    aleatoric_threshold
        The aleatoric value the percentile came to, or ``None`` when no row was scored.
    """

    keep: np.ndarray
    group: np.ndarray
    confidence: np.ndarray
    aleatoric: np.ndarray
    skipped: str | None
    target: str | None = None
    confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD
    uncertainty_percentile: float = DEFAULT_UNCERTAINTY_PERCENTILE
    aleatoric_threshold: float | None = None
    max_iter: int = 100

    def __len__(self) -> int:
        return len(self.keep)

    def counts(self) -> dict[str, int]:
        """Number of rows in each group; every group is present, with 0 when empty."""
        values, freq = np.unique(self.group.astype(str), return_counts=True)
        found = dict(zip(values.tolist(), freq.tolist(), strict=True))
        return {g: int(found.get(g, 0)) for g in GROUPS}

    def to_record(self) -> dict[str, Any]:
        """Return a JSON-serializable summary: counts, kept, dropped, skipped, thresholds."""
        kept = int(np.count_nonzero(self.keep))
        return {
            "method": "cllm",
            "target": self.target,
            "n_rows": int(len(self.keep)),
            "counts": self.counts(),
            "kept": kept,
            "dropped": int(len(self.keep)) - kept,
            "skipped": self.skipped,
            "confidence_threshold": float(self.confidence_threshold),
            "uncertainty_percentile": float(self.uncertainty_percentile),
            "aleatoric_threshold": (
                None if self.aleatoric_threshold is None else float(self.aleatoric_threshold)
            ),
            "max_iter": int(self.max_iter),
        }


def curate(
    *,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: Schema,
    target: str | None = None,
    seed: int = 0,
    confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
    uncertainty_percentile: float = DEFAULT_UNCERTAINTY_PERCENTILE,
    max_iter: int = 100,
) -> Curation:
    """Sort synthetic rows into easy, ambiguous and hard with a classifier fit on real rows.

    See the module docstring for the method, the thresholds and their source, and its limits.

    Parameters
    ----------
    real
        The real rows the classifier learns from.
    synthetic
        The generated rows to judge; they must hold the target and feature columns.
    schema
        Schema of the table; column kinds decide how each feature is encoded.
    target
        Column to predict; defaults to the schema's target.
    seed
        Random state of the classifier.
    confidence_threshold
        In ``(0, 0.5]``: hard rows have confidence at most this, easy rows at least one minus it.
    uncertainty_percentile
        In ``(0, 100]``: rows at or below this percentile of the scored rows' aleatoric values
        count as low-uncertainty.
    max_iter
        Number of boosting iterations (all of them are used; there is no early stopping).

    Returns
    -------
    Curation
        One verdict per synthetic row, in the order of ``synthetic``.

    Raises
    ------
    ParameterError
        A setting is out of range, or ``target`` is not a column of the schema.
    DataError
        ``real`` or ``synthetic`` lacks the target or a feature column.
    """
    _check_parameters(
        real=real,
        synthetic=synthetic,
        schema=schema,
        seed=seed,
        confidence_threshold=confidence_threshold,
        uncertainty_percentile=uncertainty_percentile,
        max_iter=max_iter,
    )
    if target is None:
        target = schema.target
    elif not isinstance(target, str) or target not in schema:
        raise ParameterError(
            f"target must be a column of the schema ({', '.join(schema.names)}); got {target!r}"
        )
    settings: dict[str, Any] = {
        "target": target,
        "confidence_threshold": float(confidence_threshold),
        "uncertainty_percentile": float(uncertainty_percentile),
        "max_iter": int(max_iter),
    }
    n = len(synthetic)
    try:
        features = _features(real, synthetic, schema, target, n)
        labelled, classes, y_train = _labels(real, target)
    except _Skip as e:
        logger.info("curation skipped: %s", e.reason)
        return _unchecked(n, e.reason, settings)

    x_train, x_syn, is_categorical = _encode_features(real[labelled], synthetic, features)
    y_syn = classes.encode(synthetic[target])  # NaN: missing; -1: a label the real rows lack
    probs = _label_probabilities(
        x_train, y_train, x_syn, y_syn, is_categorical, seed=seed, max_iter=max_iter
    )
    confidence, aleatoric, threshold, group, hard = _groups(
        probs, y_syn, confidence_threshold, uncertainty_percentile
    )
    result = Curation(
        keep=~hard,
        group=group,
        confidence=confidence,
        aleatoric=aleatoric,
        skipped=None,
        aleatoric_threshold=threshold,
        **settings,
    )
    logger.info("curation of %d rows on target '%s': %s", n, target, result.counts())
    return result


# -- helpers --------------------------------------------------------------------------------------
def _check_parameters(
    *,
    real: Any,
    synthetic: Any,
    schema: Any,
    seed: Any,
    confidence_threshold: Any,
    uncertainty_percentile: Any,
    max_iter: Any,
) -> None:
    for name, df in (("real", real), ("synthetic", synthetic)):
        if not isinstance(df, pd.DataFrame):
            raise ParameterError(f"{name} must be a pandas DataFrame; got {type(df).__name__}")
    if not isinstance(schema, Schema):
        raise ParameterError(f"schema must be a healthsynth Schema; got {type(schema).__name__}")
    if not _is_number(confidence_threshold) or not 0 < float(confidence_threshold) <= 0.5:
        raise ParameterError(
            f"confidence_threshold must be a number in (0, 0.5]; got {confidence_threshold!r}"
        )
    if not _is_number(uncertainty_percentile) or not 0 < float(uncertainty_percentile) <= 100:
        raise ParameterError(
            f"uncertainty_percentile must be a number in (0, 100]; got {uncertainty_percentile!r}"
        )
    if not _is_int(max_iter) or int(max_iter) < 1:
        raise ParameterError(f"max_iter must be a whole number of at least 1; got {max_iter!r}")
    if not _is_int(seed) or not 0 <= int(seed) < 2**32:
        raise ParameterError(f"seed must be a whole number in [0, 2**32); got {seed!r}")


class _Skip(Exception):
    """Curation cannot judge these rows: every row is kept and marked unchecked."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _features(
    real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, target: str | None, n: int
) -> list[Any]:
    """The feature columns; :class:`_Skip` when there is nothing to curate or to learn from."""
    if n == 0:
        raise _Skip("there are no synthetic rows to curate")
    if target is None:
        raise _Skip("the schema declares no target column, so there is no label to check")
    kind = schema[target].kind
    if kind not in _CURATED_KINDS:
        what = "numeric" if kind in ("numeric", "integer") else kind
        raise _Skip(
            f"target '{target}' is {what}; only categorical or boolean targets are curated "
            "(regression targets are not)"
        )
    for name, df in (("real", real), ("synthetic", synthetic)):
        if target not in df.columns:
            raise DataError(f"the {name} rows lack the target column '{target}'")

    features = [
        c
        for c in schema.modelled
        if c.name != target and c.kind in _FEATURE_KINDS and c.name in real.columns
    ]
    missing = [c.name for c in features if c.name not in synthetic.columns]
    if missing:
        raise DataError(
            f"the synthetic rows lack the feature column '{missing[0]}' that the real rows have"
        )
    if not features:
        raise _Skip(f"there are no feature columns to predict target '{target}' from")
    return features


def _labels(real: pd.DataFrame, target: Hashable) -> tuple[np.ndarray, _Codes, np.ndarray]:
    """The labelled real rows, the classes and their codes; :class:`_Skip` with too few."""
    labelled = real[target].notna().to_numpy()
    real_y = real[target][labelled]
    classes = _Codes.fit(real_y)
    if len(classes) < 2:
        held = "no labelled rows" if len(classes) == 0 else f"only the class {classes.values[0]!r}"
        raise _Skip(
            f"the real rows hold {held} of target '{target}', so there is nothing to tell apart"
        )
    y_train = classes.encode(real_y)
    per_class = np.bincount(y_train.astype(int), minlength=len(classes))
    if per_class.min() < MIN_ROWS_PER_CLASS:
        rare = classes.values[int(per_class.argmin())]
        raise _Skip(
            f"class {rare!r} of target '{target}' has only {int(per_class.min())} real rows; "
            f"curation needs at least {MIN_ROWS_PER_CLASS} per class"
        )
    return labelled, classes, y_train


def _groups(
    probs: np.ndarray,
    y_syn: np.ndarray,
    confidence_threshold: float,
    uncertainty_percentile: float,
) -> tuple[np.ndarray, np.ndarray, float | None, np.ndarray, np.ndarray]:
    """Confidence, aleatoric uncertainty, its cut, the group of each row and the hard rows."""
    n = len(y_syn)
    confidence = np.full(n, np.nan)
    aleatoric = np.full(n, np.nan)
    scored = ~np.isnan(y_syn) & (y_syn >= 0)
    unseen = ~np.isnan(y_syn) & (y_syn < 0)
    confidence[scored] = probs.mean(axis=1)
    aleatoric[scored] = (probs * (1.0 - probs)).mean(axis=1)
    confidence[unseen] = 0.0
    aleatoric[unseen] = 0.0

    threshold = (
        float(np.percentile(aleatoric[scored], uncertainty_percentile)) if scored.any() else None
    )
    low = np.zeros(n, dtype=bool)
    if threshold is not None:
        low[scored] = aleatoric[scored] <= threshold
    easy = scored & low & (confidence >= 1.0 - confidence_threshold)
    hard = unseen | (scored & low & ~easy & (confidence <= confidence_threshold))
    group = np.full(n, "ambiguous", dtype=object)
    group[easy] = "easy"
    group[hard] = "hard"
    group[~scored & ~unseen] = "unchecked"
    return confidence, aleatoric, threshold, group, hard


def _is_number(value: object) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool | np.bool_)
        and math.isfinite(float(value))
    )


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def _unchecked(n: int, reason: str, settings: dict[str, Any]) -> Curation:
    return Curation(
        keep=np.ones(n, dtype=bool),
        group=np.full(n, "unchecked", dtype=object),
        confidence=np.full(n, np.nan),
        aleatoric=np.full(n, np.nan),
        skipped=reason,
        **settings,
    )
