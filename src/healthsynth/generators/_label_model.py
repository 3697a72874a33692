"""A label model: p(target | other columns) from a logistic regression fitted on the real rows.

**What.** An L2-regularised logistic regression (scikit-learn's ``LogisticRegression``, ``C``
= 1, multinomial for more than two classes) is fitted on the real training rows to predict a
categorical or boolean target from the other modelled columns: categories one-hot (a missing
value is no category), numbers and dates standardised with a missing-value indicator. A
generator that carries one redraws the target of its synthetic rows from the regression's
p(target | row) — a *hybrid* generator: the features come from the generator, the outcome link
from a discriminative model of the real rows.

**Why.** On 50–500 training rows tabular-lm's rows are realistic but carry a weak link between
the features and the outcome (train-on-synthetic AUC below the classical baselines'); a
calibrated classifier learns that one conditional from few rows far better than a generative
model learns the whole joint (``docs/small-data.md`` has the measurements).

**Privacy.** The regression is a second model of the real rows, and its weights travel with the
saved generator (a few numbers per feature, as JSON). It makes the synthetic outcomes follow
the real rows' outcomes more closely: attribute inference of the target and membership
inference are reported beside its utility gain in ``docs/small-data.md``. tabular-lm uses it
by default on small tables only (``label_model=None``), says so in its training record, and
takes ``label_model=False`` (``fit --no-label-model``) to leave it out.

**Limitations.** A linear model of the features (on the encoded scale): interactions the real
rows hold are not in the relabelled outcomes unless the generator's own label is kept (the
``share`` of rows relabelled can be below 1). Regression targets are not relabelled.

The state is plain JSON (no pickles): the feature encoding, the classes and the weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema

__all__ = ["LabelModel", "design_and_codes", "feature_states"]

_EPOCH = pd.Timestamp("1970-01-01")


class LabelModel:
    """p(target | features) of a fitted logistic regression; see the module docstring.

    Build it with :meth:`fit` (or :meth:`from_dict` for a saved one).
    """

    def __init__(self, state: dict[str, Any]) -> None:
        self.target: str = state["target"]
        self.features: list[dict[str, Any]] = list(state["features"])
        self.classes: list[Any] = list(state["classes"])
        self.coef = np.asarray(state["coef"], float)
        self.intercept = np.asarray(state["intercept"], float)
        c = state.get("C", 1.0)
        self.C = None if c is None else float(c)  # None: trained with DP-SGD, no C
        self.private = bool(state.get("dp", False))

    # -- fitting ------------------------------------------------------------------------------
    @classmethod
    def why_not(cls, real: pd.DataFrame, schema: Schema) -> str | None:
        """Why no label model can be fitted on ``real`` (``None`` when one can)."""
        target = schema.target
        if target is None:
            return "the schema declares no target column"
        if schema[target].kind not in ("categorical", "boolean"):
            return f"the target '{target}' is {schema[target].kind}, not categorical or boolean"
        if real[target].dropna().nunique() < 2:
            return f"the real rows hold fewer than two classes of the target '{target}'"
        return None

    @classmethod
    def fit(cls, real: pd.DataFrame, schema: Schema, *, C: float = 1.0) -> LabelModel:  # noqa: N803
        """Fit the regression on the labelled rows of ``real`` (see :meth:`why_not` first)."""
        from sklearn.linear_model import LogisticRegression

        reason = cls.why_not(real, schema)
        if reason is not None:
            raise ValueError(reason)
        target = schema.target
        assert target is not None
        rows = real[real[target].notna()]
        features = feature_states(rows, schema)
        x, codes, classes = design_and_codes(rows, schema, features)
        clf = LogisticRegression(C=C, max_iter=5000)
        clf.fit(x, codes)
        return cls(
            {
                "target": target,
                "features": features,
                "classes": [_plain(v) for v in classes],
                "coef": clf.coef_.tolist(),
                "intercept": clf.intercept_.tolist(),
                "C": C,
            }
        )

    # -- use --------------------------------------------------------------------------------
    def proba(self, rows: pd.DataFrame) -> np.ndarray:
        """p(class | row) for every row (rows × classes, in :attr:`classes` order)."""
        z = _design(rows, self.features) @ self.coef.T + self.intercept
        if len(self.classes) == 2 and z.shape[1] == 1:  # binary: one score for class 1
            z = np.column_stack([np.zeros(len(z)), z[:, 0]])
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def draw(self, rows: pd.DataFrame, rng: np.random.Generator) -> pd.Series:
        """One target value per row drawn from p(target | row)."""
        p = self.proba(rows)
        u = rng.random(len(rows))[:, None]
        pick = np.minimum((p.cumsum(axis=1) < u).sum(axis=1), len(self.classes) - 1)
        values = np.empty(len(rows), dtype=object)
        values[:] = [self.classes[i] for i in pick]
        return pd.Series(values, index=rows.index)

    # -- persistence --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON state."""
        return {
            "target": self.target,
            "features": self.features,
            "classes": self.classes,
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
            "C": self.C,
            "dp": self.private,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> LabelModel:
        """Rebuild a label model from :meth:`to_dict`'s output."""
        return cls(state)


def _plain(v: Any) -> Any:
    """A JSON-ready scalar (numpy scalars become Python ones)."""
    return v.item() if isinstance(v, np.generic) else v


def _numbers(s: pd.Series, is_date: bool) -> np.ndarray:
    if is_date:
        t = pd.to_datetime(s, errors="coerce")
        return ((t - _EPOCH).dt.total_seconds() / 86400.0).to_numpy(float)
    return pd.to_numeric(s, errors="coerce").to_numpy(float)


def _feature_state(column: Any, s: pd.Series) -> dict[str, Any]:
    if column.kind in ("categorical", "boolean"):
        values = list(column.categories or sorted(s.dropna().unique().tolist(), key=str))
        return {"name": column.name, "kind": "cat", "values": [_plain(v) for v in values]}
    x = _numbers(s, column.kind == "datetime")
    x = x[np.isfinite(x)]
    mean = float(x.mean()) if len(x) else 0.0
    sd = float(x.std()) if len(x) > 1 and x.std() > 0 else 1.0
    return {
        "name": column.name,
        "kind": "num",
        "date": column.kind == "datetime",
        "mean": mean,
        "sd": sd,
    }


def feature_states(rows: pd.DataFrame, schema: Schema) -> list[dict[str, Any]]:
    """How each modelled column but the target enters the regression, read from ``rows``.

    Categories are the schema's (else those seen in ``rows``); numbers and dates are
    standardised with the mean and standard deviation of ``rows``.
    """
    return [_feature_state(c, rows[c.name]) for c in schema.modelled if c.name != schema.target]


def design_and_codes(
    rows: pd.DataFrame, schema: Schema, features: list[dict[str, Any]]
) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """The design matrix of ``rows`` (labelled ones), each row's class index, and the classes.

    The classes are the target values seen in ``rows``, sorted by their text.
    """
    target = schema.target
    assert target is not None
    y = rows[target].to_numpy()
    classes = sorted(pd.unique(y).tolist(), key=str)
    index = {v: i for i, v in enumerate(classes)}
    return _design(rows, features), np.array([index[v] for v in y.tolist()]), classes


def _design(rows: pd.DataFrame, features: list[dict[str, Any]]) -> np.ndarray:
    parts: list[np.ndarray] = []
    for f in features:
        s = rows[f["name"]]
        if f["kind"] == "cat":
            codes = pd.Categorical(s, categories=f["values"]).codes
            parts.append(np.eye(len(f["values"]) + 1)[codes][:, :-1])  # -1 (missing): none
            continue
        x = _numbers(s, f["date"])
        miss = ~np.isfinite(x)
        parts.append(np.column_stack([np.where(miss, 0.0, (x - f["mean"]) / f["sd"]), miss]))
    return np.hstack(parts) if parts else np.zeros((len(rows), 0))
