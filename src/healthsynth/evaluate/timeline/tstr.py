"""Train on synthetic timelines, test on real ones.

Card
----
What: a prediction task on timelines, "does event X happen within H days after the index date
(day 0)?", from what is known at the index date: the patients table's static columns (numbers
as they are, text as one-hot columns; the end-of-follow-up and death columns are left out
because they tell the future), the number of events of each item on or before day 0, and the
last value of each lab item on or before day 0. A gradient-boosting classifier
(scikit-learn's HistGradientBoosting, missing values handled natively) is trained on the
synthetic patients and scored on the real holdout patients by ROC AUC; trained on the real
training patients and scored on the same holdout, it gives the reference.
Task: given as ``task={"item": ..., "table": ..., "horizon_days": 730, "exclude_prior":
True}`` (``table`` only when the item name occurs in several tables), or chosen as the coded
item (an event without a number) that the most eligible training patients have within the
horizon, when at least 5 % do.
Who is counted: with ``exclude_prior`` (default), patients who already had X on or before day 0
are left out, so the task is a new X. Patients whose follow-up ends before the horizon without
X, alive, are left out: whether X came later is unknown (censored). Patients who died before
the horizon without X are kept as negatives: they did not have X within the horizon. The
counts of each group are in ``details``.
Range: AUC 0–1 (0.5 = chance).
Direction: higher is better.
Reference: the train-on-real AUC; ``details["gap"]`` = reference − value.
Interval: a 95 % bootstrap over the holdout patients (200 resamples).
Not applicable without a holdout, with calendar-date times (no index date), without a usable
task, or when the eligible holdout patients are fewer than 20 or all of one class. A synthetic
training set of one class scores AUC 0.5.
Limitations: one task, one model family with default settings; at most ``max_train`` (20,000)
training patients; counts and last values are a crude summary of a history; a small holdout
gives a wide interval.
Citation: Esteban, Hyland & Rätsch 2017 (train on synthetic, test on real); Theodorou et al.
2023 (HALO) and Pang et al. 2024 (CEHR-GPT) score synthetic timelines by downstream prediction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from healthsynth.data import Dataset
from healthsynth.errors import ParameterError
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord, not_applicable
from healthsynth.evaluate.timeline._prepare import Timelines, prepared
from healthsynth.evaluate.timeline._records import sides

__all__ = ["INFO", "Task", "check_task", "compute", "default_task"]

NAME = "timeline_tstr"
DIMENSION = "utility"
DEFAULT_HORIZON = 730.0
MIN_SHARE = 0.05
_TASK_KEYS = ("item", "table", "horizon_days", "exclude_prior")
_MIN_TEST = 20
_N_BOOT = 200
_MAX_LEVELS = 20


INFO = MetricInfo(
    name=NAME,
    dimension=DIMENSION,
    kind="timelines",
    summary="Train on synthetic timelines, test on real ones: predicting an event within a "
    "horizon.",
    measures=(
        Measure(
            NAME,
            "higher",
            "ROC AUC on real holdout patients of a model trained on synthetic timelines to "
            "predict an event within a horizon; the reference is train-on-real.",
            low=0,
            high=1,
        ),
    ),
)


@dataclass(frozen=True)
class Task:
    """A resolved prediction task: event ``label`` within ``horizon`` days after day 0."""

    label: str
    horizon: float
    exclude_prior: bool
    chosen: str  # "given" or "most common"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "item": self.label,
            "horizon_days": self.horizon,
            "exclude_prior": self.exclude_prior,
            "chosen": self.chosen,
        }


def check_task(task: Mapping[str, Any] | None, real: Dataset | Timelines) -> Task | None:
    """Validate a user's ``task`` against the real data; None when no task is given.

    Raises
    ------
    ParameterError
        For an unknown key, a horizon that is not a positive number, or an item the real data
        does not have (or has in several tables without ``table``).
    """
    if task is None:
        return None
    if not isinstance(task, Mapping):
        raise ParameterError(
            "task must be a dict such as {'item': 'diabetes', 'horizon_days': 730}; "
            f"got {type(task).__name__}"
        )
    unknown = [k for k in task if k not in _TASK_KEYS]
    if unknown:
        raise ParameterError(
            f"task key '{unknown[0]}' is not known; the keys are: {', '.join(_TASK_KEYS)}"
        )
    item = task.get("item")
    if not isinstance(item, str) or not item:
        raise ParameterError(f"task['item'] must name an event item; got {item!r}")
    horizon = task.get("horizon_days", DEFAULT_HORIZON)
    if isinstance(horizon, bool) or not isinstance(horizon, (int, float)) or not horizon > 0:
        raise ParameterError(f"task['horizon_days'] must be a positive number; got {horizon!r}")
    exclude_prior = task.get("exclude_prior", True)
    if not isinstance(exclude_prior, bool):
        raise ParameterError(f"task['exclude_prior'] must be true or false; got {exclude_prior!r}")
    r = prepared(real)
    assert r is not None
    table = task.get("table")
    hits = [lab for lab, (t, i) in r.items.items() if i == item and (table is None or t == table)]
    if not hits:
        where = f" in table '{table}'" if table is not None else ""
        raise ParameterError(
            f"task item '{item}'{where} does not occur in the real data; its items are: "
            f"{', '.join(sorted(r.items))}"
        )
    if len(hits) > 1:
        raise ParameterError(
            f"task item '{item}' occurs in several tables ({', '.join(sorted(hits))}); give "
            "task['table'] as well"
        )
    return Task(hits[0], float(horizon), exclude_prior, "given")


def outcome(tl: Timelines, task: Task) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Labels (event within the horizon), the patients kept, and how many were left out."""
    ev = tl.events[tl.events["label"] == task.label]
    t, p = ev["t"].to_numpy(), ev["p"].to_numpy()
    y = np.zeros(tl.n, bool)
    y[p[(t > 0) & (t <= task.horizon)]] = True
    prior = np.zeros(tl.n, bool)
    prior[p[t <= 0]] = True
    keep = np.ones(tl.n, bool)
    if task.exclude_prior:
        keep &= ~prior
    with np.errstate(invalid="ignore"):
        censored = (tl.end < task.horizon) & ~tl.died & ~y
    censored &= keep
    keep &= ~censored
    counts = {
        "patients": tl.n,
        "kept": int(keep.sum()),
        "positives": int((y & keep).sum()),
        "left_out_prior": int((prior & task.exclude_prior).sum()),
        "left_out_censored": int(censored.sum()),
    }
    return y, keep, counts


def default_task(real: Dataset | Timelines, horizon: float = DEFAULT_HORIZON) -> Task | None:
    """The coded item most eligible training patients have within ``horizon`` (≥ 5 %)."""
    r = prepared(real)
    assert r is not None
    best, best_share = None, 0.0
    for label in r.code_labels:
        task = Task(label, horizon, True, "most common")
        y, keep, _ = outcome(r, task)
        share = float(y[keep].mean()) if keep.any() else 0.0
        if share > best_share:
            best, best_share = task, share
    return best if best is not None and best_share >= MIN_SHARE else None


@dataclass(frozen=True)
class _Spec:
    """The feature layout, learned from the real training patients."""

    numeric: list[str]
    categories: dict[str, list[Any]]
    labels: list[str]
    value_labels: list[str]

    @classmethod
    def learn(cls, tl: Timelines) -> _Spec:
        ds = tl.dataset
        skip = {ds.key, ds.end, ds.death}
        numeric, cats = [], {}
        for c in tl.patients.columns:
            if c in skip:
                continue
            s = tl.patients[c]
            if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
                numeric.append(c)
            elif not pd.api.types.is_datetime64_any_dtype(s):
                top = s.dropna().astype(str).value_counts().index[:_MAX_LEVELS]
                cats[c] = top.tolist()
        return cls(numeric, cats, list(tl.labels), list(tl.value_labels))

    def names(self) -> list[str]:
        return [
            *self.numeric,
            *(f"{c}={v}" for c, levels in self.categories.items() for v in levels),
            *(f"count:{lab}" for lab in self.labels),
            *(f"last:{lab}" for lab in self.value_labels),
        ]

    def matrix(self, tl: Timelines) -> np.ndarray:
        p = tl.patients
        blocks = []
        for c in self.numeric:
            missing = np.full(tl.n, np.nan)
            x = pd.to_numeric(p[c], errors="coerce").to_numpy(float) if c in p.columns else missing
            blocks.append(x[:, None])
        for c, levels in self.categories.items():
            s = p[c].astype(str) if c in p.columns else pd.Series([""] * tl.n)
            for v in levels:
                blocks.append((s == v).to_numpy(float)[:, None])
        blocks.append(tl.counts(self.labels, until=0.0))
        blocks.append(self._last_values(tl))
        return np.hstack(blocks)

    def _last_values(self, tl: Timelines) -> np.ndarray:
        out = np.full((tl.n, len(self.value_labels)), np.nan)
        ev = tl.events
        rows = (ev["t"].to_numpy() <= 0) & np.isfinite(ev["value"].to_numpy())
        ev = ev[rows].sort_values(["p", "t"], kind="stable")
        ev = ev.drop_duplicates(["p", "label"], keep="last")
        col = pd.Categorical(ev["label"], categories=self.value_labels).codes
        ok = col >= 0
        out[ev["p"].to_numpy()[ok], col[ok]] = ev["value"].to_numpy()[ok]
        return out


def _design(
    spec: _Spec, task: Task, sides: dict[str, Timelines]
) -> tuple[dict[str, dict[str, int]], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Per side, the patient counts of :func:`outcome`, and the features and labels kept."""
    groups = {}
    data = {}
    for role, tl in sides.items():
        y, keep, counts = outcome(tl, task)
        groups[role] = counts
        data[role] = (spec.matrix(tl)[keep], y[keep].astype(int))
    return groups, data


def _predictions(
    data: dict[str, tuple[np.ndarray, np.ndarray]], xh: np.ndarray, *, max_train: int, seed: int
) -> dict[str, np.ndarray | None]:
    """Holdout predictions of a model trained on the synthetic, then on the real patients."""
    rng = np.random.default_rng(seed)
    preds = {}
    for role in ("synthetic", "real"):
        x, y = data[role]
        if len(y) > max_train:
            pick = rng.choice(len(y), max_train, replace=False)
            x, y = x[pick], y[pick]
        preds[role] = _fit_predict(x, y, xh, seed=seed)
    return preds


def _fit_predict(
    x: np.ndarray, y: np.ndarray, x_test: np.ndarray, *, seed: int
) -> np.ndarray | None:
    """Probability of the event for the test patients; None when ``y`` has one class."""
    if len(np.unique(y)) < 2:
        return None
    clf = HistGradientBoostingClassifier(max_iter=200, random_state=seed)
    clf.fit(x, y)
    return clf.predict_proba(x_test)[:, 1]  # type: ignore[no-any-return]


def _bootstrap(y: np.ndarray, score: np.ndarray, seed: int) -> tuple[float, float] | None:
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(_N_BOOT):
        i = rng.integers(0, len(y), len(y))
        if y[i].min() != y[i].max():
            vals.append(roc_auc_score(y[i], score[i]))
    if len(vals) < _N_BOOT // 2:
        return None
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return float(lo), float(hi)


def compute(
    *,
    real: Dataset | Timelines,
    synthetic: Dataset | Timelines,
    holdout: Dataset | Timelines | None = None,
    seed: int = 0,
    task: Mapping[str, Any] | None = None,
    max_train: int = 20_000,
) -> list[MetricRecord]:
    """Holdout AUC of a model trained on synthetic timelines, train-on-real as reference.

    Parameters
    ----------
    real
        The training patients.
    synthetic
        The generated patients.
    holdout
        Real patients the generator never saw: the test set.
    seed
        Seed of the models, the training subsample and the bootstrap.
    task
        ``{"item": ..., "table": ..., "horizon_days": 730, "exclude_prior": True}``; chosen
        from the data when not given (see the card).
    max_train
        Train on at most this many patients (a seeded subsample).

    Returns
    -------
    list of MetricRecord
        One ``timeline_tstr`` record (ROC AUC).
    """
    r, s, h = sides(real, synthetic, holdout)
    if h is None:
        return [
            not_applicable(
                NAME, DIMENSION, "no holdout: utility is measured on real patients never seen"
            )
        ]
    if r.dates:
        return [
            not_applicable(
                NAME,
                DIMENSION,
                "event times are calendar dates: the task needs days from an index date (day 0)",
            )
        ]
    resolved = check_task(task, r) if task is not None else default_task(r)
    if resolved is None:
        return [
            not_applicable(
                NAME,
                DIMENSION,
                f"no coded item happens within {DEFAULT_HORIZON:.0f} days after day 0 in "
                f"{MIN_SHARE:.0%} of the eligible training patients; give a task "
                "(task={'item': ..., 'horizon_days': ...})",
            )
        ]
    spec = _Spec.learn(r)
    groups, data = _design(spec, resolved, {"real": r, "synthetic": s, "holdout": h})
    details: dict[str, Any] = {
        "task": resolved.to_dict(),
        "patients": groups,
        "n_features": len(spec.names()),
        "censoring": "alive patients followed for less than the horizon without the event are "
        "left out; patients who died before it without the event count as negatives",
    }
    xh, yh = data["holdout"]
    if len(yh) < _MIN_TEST or yh.min() == yh.max():
        return [
            not_applicable(
                NAME,
                DIMENSION,
                f"the holdout has {len(yh)} eligible patients with {int(yh.sum())} events of "
                f"{resolved.label}: too few, or one class only, for an AUC",
                details=details,
            )
        ]
    preds = _predictions(data, xh, max_train=max_train, seed=seed)
    syn = preds["synthetic"]
    value = 0.5 if syn is None else float(roc_auc_score(yh, syn))
    ref = None if preds["real"] is None else float(roc_auc_score(yh, preds["real"]))
    details["train_on_real"] = ref
    details["gap"] = None if ref is None else ref - value
    if preds["real"] is not None:
        details["train_on_real_interval"] = _bootstrap(yh, preds["real"], seed)
    return [
        MetricRecord(
            name=NAME,
            dimension=DIMENSION,
            value=value,
            direction="higher",
            interval=None if syn is None else _bootstrap(yh, syn, seed),
            reference=ref,
            details=details,
            message=None
            if syn is not None
            else f"the synthetic patients have one class of the outcome ({resolved.label})",
        )
    ]
