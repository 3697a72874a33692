"""A label model: p(target | other columns) from a classifier fitted on the real rows.

**What.** A classifier of a categorical or boolean target on the other modelled columns is
fitted on the real training rows: categories one-hot (with a missing-value indicator when the
rows lack some), numbers and dates standardised with a missing-value indicator. Three kinds:

* ``logistic`` — an L2-regularised logistic regression (scikit-learn's ``LogisticRegression``,
  ``C`` = 1, multinomial for more than two classes);
* ``spline`` — the same regression with, for every number or date of at least
  :data:`SPLINE_MIN_VALUES` distinct values, a cubic B-spline basis of it as well (knots at
  :data:`SPLINE_KNOTS` quantiles of the training rows, linear beyond them): each column's
  effect on the log-odds may bend (a risk that rises only past some age, or with the log of a
  lab value), but the columns still add up (no interactions);
* ``boosted`` — gradient-boosted trees (scikit-learn's ``GradientBoostingClassifier`` with
  :data:`BOOSTED`'s settings: best-first trees of at most 31 leaves, each leaf an average over
  at least 20 training rows), which carry interactions and sharp thresholds (an outcome that
  follows a cut-off in a lab value, or the presence of a cause of death) that a regression
  smooths away.

``auto`` is not a kind of its own: :meth:`LabelModel.fit` scores ``logistic`` and ``spline`` by
their five-fold cross-validated log-loss on the training rows and keeps the better one (the
scores are kept in the state as ``selection``; with a class of a single row nothing can be
scored and it keeps ``logistic``).

A generator that carries one redraws the target of its synthetic rows from the classifier's
p(target | row) — a *hybrid* generator: the features come from the generator, the outcome
link from a discriminative model of the real rows.

**Why.** On 50–500 training rows tabular-lm's rows are realistic but carry a weak link between
the features and the outcome (train-on-synthetic AUC below the classical baselines'); a
classifier learns that one conditional from few rows far better than a generative model learns
the whole joint (``docs/small-data.md`` has the measurements). The regression, with or
without spline terms as ``auto`` chooses, is the default: the trees were far better on one
table of a few hundred rows (gbsg) and worse on others, and the choice by log-loss does not
find where they pay (it was tried).

**Privacy.** The classifier is a second model of the real rows, and its parameters travel with
the saved generator (as JSON). It makes the synthetic outcomes follow the real rows' outcomes
more closely: attribute inference of the target and membership inference are reported beside
its utility gain in ``docs/small-data.md``. tabular-lm uses it by default on small tables only
(``label_model=None``), says so in its training record, and takes ``label_model=False`` (``fit
--no-label-model``) to leave it out.

**Limitations.** The regression adds up one effect per column (bent, with spline terms):
interactions are not in its outcomes unless the generator's own label is kept (the ``share``
of rows relabelled can be below 1). Regression targets are not relabelled.

The state is plain JSON (no pickles): the feature encoding (with the spline knots), the
classes, and the weights or the trees (each node's feature, threshold, children and value).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema

__all__ = [
    "AUTO_KINDS",
    "BOOSTED",
    "KINDS",
    "LabelModel",
    "SPLINE_KNOTS",
    "design_and_codes",
    "feature_states",
]

#: The label model's kinds: a logistic regression, one with spline terms, or boosted trees.
KINDS = ("logistic", "spline", "boosted")
#: The kinds ``kind="auto"`` chooses between, by cross-validated log-loss.
AUTO_KINDS = ("logistic", "spline")
#: Knots of a number's spline terms: at these quantiles of its training values.
SPLINE_KNOTS = (0.0, 1 / 3, 2 / 3, 1.0)
#: A number gets spline terms only with at least this many distinct training values.
SPLINE_MIN_VALUES = 5

#: The boosted label model's trees (scikit-learn's ``GradientBoostingClassifier``): 100 rounds
#: at rate 0.1 of best-first trees of at most 31 leaves, each leaf an average over at least 20
#: training rows (no single patient's outcome is a leaf).
BOOSTED = {
    "n_estimators": 100,
    "learning_rate": 0.1,
    "max_depth": None,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 20,
}

_EPOCH = pd.Timestamp("1970-01-01")


class LabelModel:
    """p(target | features) of a fitted logistic regression; see the module docstring.

    Build it with :meth:`fit` (or :meth:`from_dict` for a saved one).
    """

    def __init__(self, state: dict[str, Any]) -> None:
        self.target: str = state["target"]
        self.features: list[dict[str, Any]] = list(state["features"])
        self.classes: list[Any] = list(state["classes"])
        self.kind: str = state.get("kind", "logistic")  # folders saved before the kinds: logistic
        if self.kind not in KINDS:
            raise ValueError(f"unknown label model kind {self.kind!r}")
        for f in self.features:
            knots = np.asarray(f.get("knots", [0.0, 1.0]), float)
            if (
                knots.ndim != 1
                or len(knots) < 2
                or not np.isfinite(knots).all()
                or (np.diff(knots) <= 0).any()
            ):
                name = f.get("name")
                raise ValueError(f"the spline knots of '{name}' are not an increasing list")
        self.coef = np.asarray(state.get("coef", []), float)
        self.intercept = np.asarray(state.get("intercept", []), float)
        c = state.get("C", 1.0)
        self.C = None if c is None else float(c)  # None: trained with DP-SGD, no C
        self.private = bool(state.get("dp", False))
        self.trees: list[list[dict[str, list[Any]]]] = state.get("trees", [])
        self.learning_rate = float(state.get("learning_rate", 0.0))
        self.baseline = np.asarray(state.get("baseline", []), float)
        self.selection: dict[str, float] | None = state.get("selection")
        self._arrays = [[_tree_arrays(t) for t in stage] for stage in self.trees]

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
    def fit(
        cls,
        real: pd.DataFrame,
        schema: Schema,
        *,
        C: float = 1.0,  # noqa: N803
        kind: str = "logistic",
        seed: int | None = 0,
    ) -> LabelModel:
        """Fit the model on the labelled rows of ``real`` (see :meth:`why_not` first).

        ``kind`` is ``"logistic"`` (an L2 logistic regression with this ``C``), ``"spline"``
        (the same with spline terms of the numbers), ``"boosted"`` (scikit-learn's
        gradient-boosted trees with :data:`BOOSTED`'s settings; ``seed`` fixes its
        tie-breaking), or ``"auto"``: the better of :data:`AUTO_KINDS` by five-fold
        cross-validated log-loss on these rows (``seed`` fixes the folds).
        """
        if kind not in (*KINDS, "auto"):
            raise ValueError(
                f"label model kind must be one of auto, {', '.join(KINDS)}; got {kind!r}"
            )
        reason = cls.why_not(real, schema)
        if reason is not None:
            raise ValueError(reason)
        target = schema.target
        assert target is not None
        rows = real[real[target].notna()]
        if kind == "auto":
            selection = _cross_validated(rows, schema, C=C, seed=seed)
            chosen = min(selection, key=lambda k: selection[k]) if selection else "logistic"
            model = cls.fit(rows, schema, C=C, kind=chosen, seed=seed)
            model.selection = selection
            return model
        features = feature_states(rows, schema, splines=kind == "spline")
        x, codes, classes = design_and_codes(rows, schema, features)
        state: dict[str, Any] = {
            "target": target,
            "features": features,
            "classes": [_plain(v) for v in classes],
            "kind": kind,
        }
        if kind == "boosted":
            return cls({**state, **_boosted_state(x, codes, seed), "C": None})
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(C=C, max_iter=5000)
        clf.fit(x, codes)
        return cls(
            {**state, "coef": clf.coef_.tolist(), "intercept": clf.intercept_.tolist(), "C": C}
        )

    # -- use --------------------------------------------------------------------------------
    def proba(self, rows: pd.DataFrame) -> np.ndarray:
        """p(class | row) for every row (rows × classes, in :attr:`classes` order)."""
        x = _design(rows, self.features)
        z = self._boosted_scores(x) if self.kind == "boosted" else x @ self.coef.T + self.intercept
        if len(self.classes) == 2 and z.shape[1] == 1:  # binary: one score for class 1
            z = np.column_stack([np.zeros(len(z)), z[:, 0]])
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def _boosted_scores(self, x: np.ndarray) -> np.ndarray:
        """The trees' summed scores: the baseline plus the learning rate times each leaf."""
        z = np.tile(self.baseline, (len(x), 1))
        x = x.astype(np.float32)  # scikit-learn's trees split on single-precision features
        for stage in self._arrays:
            for k, tree in enumerate(stage):
                z[:, k] += self.learning_rate * _leaf_values(tree, x)
        return z

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
            "kind": self.kind,
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
            "C": self.C,
            "dp": self.private,
            "trees": self.trees,
            "learning_rate": self.learning_rate,
            "baseline": self.baseline.tolist(),
            "selection": self.selection,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> LabelModel:
        """Rebuild a label model from :meth:`to_dict`'s output."""
        return cls(state)


def _cross_validated(
    rows: pd.DataFrame,
    schema: Schema,
    *,
    C: float,
    seed: int | None,  # noqa: N803
) -> dict[str, float]:
    """Each of :data:`AUTO_KINDS`' log-loss on rows it was not fitted on (five folds).

    The folds keep the classes' shares; with fewer than two rows in some class there is no
    such split, and nothing is scored (an empty dict: ``auto`` is then ``logistic``).
    """
    from sklearn.model_selection import StratifiedKFold

    target = schema.target
    assert target is not None
    y = rows[target].astype(str).to_numpy()
    counts = pd.Series(y).value_counts()
    folds = int(min(5, counts.min()))
    if folds < 2:
        return {}
    split = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(rows, y))
    scores: dict[str, float] = {}
    for kind in AUTO_KINDS:
        loss = 0.0
        for fit_at, score_at in split:
            model = LabelModel.fit(rows.iloc[fit_at], schema, C=C, kind=kind, seed=seed)
            p = model.proba(rows.iloc[score_at])
            # each row's probability of its own class (0 for a class the fold never saw: the
            # clip keeps its loss finite)
            column = {str(c): i for i, c in enumerate(model.classes)}
            own = np.array([column.get(v, -1) for v in y[score_at]])
            prob = np.where(own >= 0, p[np.arange(len(own)), np.maximum(own, 0)], 0.0)
            loss -= float(np.log(np.clip(prob, 1e-9, 1.0)).sum())
        scores[kind] = round(loss / len(rows), 6)
    return scores


def _boosted_state(x: np.ndarray, codes: np.ndarray, seed: int | None) -> dict[str, Any]:
    """Gradient-boosted trees of ``codes`` on ``x``, as plain lists (no pickle)."""
    from sklearn.ensemble import GradientBoostingClassifier

    clf = GradientBoostingClassifier(**BOOSTED, random_state=seed).fit(x, codes)
    trees = [
        [
            {
                "left": est.tree_.children_left.tolist(),
                "right": est.tree_.children_right.tolist(),
                "feature": est.tree_.feature.tolist(),
                "threshold": est.tree_.threshold.tolist(),
                "value": est.tree_.value[:, 0, 0].tolist(),
            }
            for est in stage
        ]
        for stage in clf.estimators_
    ]
    # The trees' starting score (the log-odds of the classes' shares) read through the public
    # API: the decision function of one row less what its trees add.
    row = x[:1]
    added = np.array([[est.predict(row)[0] for est in stage] for stage in clf.estimators_])
    baseline = np.atleast_1d(clf.decision_function(row)[0]) - clf.learning_rate * added.sum(0)
    return {"trees": trees, "learning_rate": clf.learning_rate, "baseline": baseline.tolist()}


def _tree_arrays(tree: dict[str, list[Any]]) -> dict[str, np.ndarray]:
    """A saved tree as arrays; ``ValueError`` if its nodes do not form a tree."""
    real_valued = ("threshold", "value")
    arrays = {k: np.asarray(tree[k], float if k in real_valued else int) for k in _TREE_KEYS}
    n = len(arrays["value"])
    if n == 0 or any(len(v) != n for v in arrays.values()):
        raise ValueError("a tree of the label model has node lists of different lengths")
    for side in ("left", "right"):
        child = arrays[side]
        inner = child >= 0
        # scikit-learn numbers a node's children after the node, so the walk always ends
        if (child < -1).any() or (child >= n).any() or (child[inner] <= np.nonzero(inner)[0]).any():
            raise ValueError("a tree of the label model has a child outside the tree")
    return arrays


_TREE_KEYS = ("left", "right", "feature", "threshold", "value")


def _leaf_values(tree: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Each row's leaf value: rows go left where their feature is at most the threshold."""
    node = np.zeros(len(x), dtype=int)
    rows = np.arange(len(x))
    while True:
        inner = tree["left"][node] >= 0
        if not inner.any():
            return tree["value"][node]
        f = np.where(inner, tree["feature"][node], 0)
        go_left = x[rows, f] <= tree["threshold"][node]
        node = np.where(inner, np.where(go_left, tree["left"][node], tree["right"][node]), node)


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
        state = {"name": column.name, "kind": "cat", "values": [_plain(v) for v in values]}
        if s.isna().any():  # missingness can carry the outcome (a cause of death given or not)
            state["missing"] = True
        return state
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


def feature_states(
    rows: pd.DataFrame, schema: Schema, *, splines: bool = False
) -> list[dict[str, Any]]:
    """How each modelled column but the target enters the regression, read from ``rows``.

    Categories are the schema's (else those seen in ``rows``), with a missing-value indicator
    when ``rows`` lack some; numbers and dates are standardised with the mean and standard
    deviation of ``rows``. With ``splines``, a number or date of at least
    :data:`SPLINE_MIN_VALUES` distinct values also gets the knots of its spline terms (on the
    standardised scale).
    """
    states = []
    for c in schema.modelled:
        if c.name == schema.target:
            continue
        state = _feature_state(c, rows[c.name])
        if splines and state["kind"] == "num":
            z = (_numbers(rows[c.name], state["date"]) - state["mean"]) / state["sd"]
            z = z[np.isfinite(z)]
            if len(np.unique(z)) >= SPLINE_MIN_VALUES:
                knots = np.unique(np.quantile(z, SPLINE_KNOTS))
                if len(knots) >= 2:
                    state["knots"] = knots.tolist()
        states.append(state)
    return states


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
            one_hot = np.eye(len(f["values"]) + 1)[codes]  # code -1 (missing): the last column
            parts.append(one_hot if f.get("missing") else one_hot[:, :-1])
            continue
        x = _numbers(s, f["date"])
        miss = ~np.isfinite(x)
        z = np.where(miss, 0.0, (x - f["mean"]) / f["sd"])
        parts.append(np.column_stack([z, miss]))
        if "knots" in f:
            parts.append(_spline_terms(z, f["knots"]))
    return np.hstack(parts) if parts else np.zeros((len(rows), 0))


def _spline_terms(z: np.ndarray, knots: list[float]) -> np.ndarray:
    """Cubic B-spline terms of ``z`` on ``knots``, linear beyond the outer knots.

    The same terms as scikit-learn's ``SplineTransformer(knots=..., degree=3,
    extrapolation="linear")`` (a test compares them), computed here with numpy so that
    sampling a saved model imports neither scikit-learn nor scipy: the knots are extended by
    three steps of the outer spacing on each side, the basis is built by the Cox-de Boor
    recursion, and beyond the outer knots each term continues along its tangent there.
    """
    k = np.asarray(knots, float)
    lo, hi = k[0], k[-1]
    t = np.r_[lo - (k[1] - k[0]) * np.arange(3, 0, -1), k, hi + (k[-1] - k[-2]) * np.arange(1, 4)]
    inside = np.clip(z, lo, hi)
    value, slope = _bspline_basis(inside, t)
    past = (z - inside)[:, None]  # 0 inside, the distance beyond the knot outside
    return value + past * slope


def _bspline_basis(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cubic B-splines on knots ``t`` at ``x`` (inside ``t[3]..t[-4]``) and their slopes."""
    n = len(t) - 1  # intervals between knots: the splines of degree d number n - d
    # degree 0: the interval each x falls in (the last one closed on the right)
    j = np.clip(np.searchsorted(t, x, side="right") - 1, 3, n - 4)
    basis = np.zeros((len(x), n))
    basis[np.arange(len(x)), j] = 1.0
    quadratic = basis
    for d in (1, 2, 3):
        quadratic = basis  # after the loop: the degree-2 splines
        left = _ratio(x[:, None] - t[: n - d], t[d:n] - t[: n - d])
        right = _ratio(t[d + 1 : n + 1] - x[:, None], t[d + 1 : n + 1] - t[1 : n - d + 1])
        basis = left * basis[:, : n - d] + right * basis[:, 1 : n - d + 1]
    # the slope of a cubic B-spline from the two quadratic ones under it
    first = _ratio(quadratic[:, : n - 3], t[3:n] - t[: n - 3])
    second = _ratio(quadratic[:, 1 : n - 2], t[4 : n + 1] - t[1 : n - 2])
    return basis, 3 * (first - second)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The quotient ``a / b``, 0 where ``b`` is 0 (Cox-de Boor's rule for repeated knots)."""
    shape = np.broadcast_shapes(np.shape(a), np.shape(b))
    a, b = np.broadcast_to(a, shape), np.broadcast_to(b, shape)
    return np.divide(a, b, out=np.zeros(shape), where=b != 0)
