"""The classifier of :func:`~healthsynth.generators._curate.curate`: features and label odds.

Features are encoded for scikit-learn's ``HistGradientBoostingClassifier`` (categories as codes,
dates as days), and the classifier, trained on the real rows, gives each synthetic row's own label
a probability at every boosting iteration: the learning dynamics Data-IQ summarises.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

import numpy as np
import pandas as pd

# HistGradientBoostingClassifier accepts at most max_bins (255) categories per feature; a
# categorical column with more is passed as ordinal codes instead.
_MAX_NATIVE_CATEGORIES = 255
# HistGradientBoostingClassifier's default min_samples_leaf (20) forbids every split on the few
# dozen rows CLLM is meant for; a tenth of the training rows (at least 2, at most 20) lets the
# trees learn something there and is the default for 200 rows or more.
_MAX_LEAF = 20
_MIN_LEAF = 2


class _Codes:
    """Codes 0..k-1 for the distinct values of the real rows (matched as is, then as text)."""

    def __init__(self, values: list[Hashable]) -> None:
        self.values = values
        self._exact: dict[Hashable, int] = {}
        self._text: dict[str, int] = {}
        for i, v in enumerate(values):
            self._exact.setdefault(v, i)
            self._text.setdefault(str(v), i)

    @classmethod
    def fit(cls, s: pd.Series) -> _Codes:
        distinct = pd.unique(s.dropna())
        return cls(sorted((_scalar(v) for v in distinct), key=lambda v: (str(type(v)), str(v))))

    def __len__(self) -> int:
        return len(self.values)

    def encode(self, s: Iterable[Any]) -> np.ndarray:
        """Codes as floats: NaN for missing values, -1 for values the real rows lack."""
        out = []
        for v in s:
            if _is_missing(v):
                out.append(np.nan)
                continue
            v = _scalar(v)
            try:
                code = self._exact.get(v)
            except TypeError:  # unhashable
                code = None
            if code is None:
                code = self._text.get(str(v), -1)
            out.append(float(code))
        return np.asarray(out, dtype=float)


def _scalar(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _is_missing(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):  # arrays, lists
        return False


def _encode_features(
    real: pd.DataFrame, synthetic: pd.DataFrame, features: list[Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Float matrices for the classifier and a mask of the columns passed as categorical."""
    train_cols, syn_cols, categorical = [], [], []
    for col in features:
        if col.kind in ("categorical", "boolean"):
            codes = _Codes.fit(real[col.name])
            tr, sy = codes.encode(real[col.name]), codes.encode(synthetic[col.name])
            sy[sy < 0] = np.nan  # a category the real rows never show
            train_cols.append(tr)
            syn_cols.append(sy)
            categorical.append(0 < len(codes) <= _MAX_NATIVE_CATEGORIES)
        elif col.kind == "datetime":
            train_cols.append(_days(real[col.name]))
            syn_cols.append(_days(synthetic[col.name]))
            categorical.append(False)
        else:
            train_cols.append(_numbers(real[col.name]))
            syn_cols.append(_numbers(synthetic[col.name]))
            categorical.append(False)
    return (
        np.column_stack(train_cols),
        np.column_stack(syn_cols),
        np.asarray(categorical, dtype=bool),
    )


def _numbers(s: pd.Series) -> np.ndarray:
    out = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    out[~np.isfinite(out)] = np.nan
    return out


def _days(s: pd.Series) -> np.ndarray:
    t = pd.to_datetime(s, errors="coerce", utc=True)
    days = (t - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(days=1)
    return np.asarray(days, dtype=float)


def _label_probabilities(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_syn: np.ndarray,
    y_syn: np.ndarray,
    is_categorical: np.ndarray,
    *,
    seed: int,
    max_iter: int,
) -> np.ndarray:
    """Probability of each scored synthetic row's own label at every boosting iteration.

    Returns an array of shape (scored rows, max_iter); scored rows have a label seen in the
    real rows.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    scored = ~np.isnan(y_syn) & (y_syn >= 0)
    if not scored.any():
        return np.empty((0, max_iter))
    leaf = int(min(_MAX_LEAF, max(_MIN_LEAF, len(y_train) // 10)))
    clf = HistGradientBoostingClassifier(
        max_iter=int(max_iter),
        early_stopping=False,
        min_samples_leaf=leaf,
        categorical_features=is_categorical if is_categorical.any() else None,
        random_state=int(seed),
    )
    clf.fit(x_train, y_train.astype(int))
    # classes_ are the codes 0..k-1 because every class occurs in the training rows
    column = np.searchsorted(clf.classes_, y_syn[scored].astype(int))
    rows = np.arange(int(scored.sum()))
    stages = [p[rows, column] for p in clf.staged_predict_proba(x_syn[scored])]
    return np.column_stack(stages)
