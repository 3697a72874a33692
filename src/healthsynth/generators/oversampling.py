"""SMOTE and random oversampling as whole-table generators, through ``imbalanced-learn``.

**Methods.** Both make rows class by class of the schema's target column. SMOTE (Chawla et
al., 2002) makes a new row of a class by picking one of its training rows and a random one of
its ``k`` nearest neighbours *within the same class*, and placing the new row at a random
point on the segment between them; categories take the most common value among the
neighbours (SMOTE-NC; SMOTE-N when every column is a category, plain SMOTE when every column is
a number). Random oversampling draws training rows of the class with replacement: every row it
returns is an exact copy of a real patient's record. It is the privacy worst case, kept as the
reference point for the imbalance experiments, never as a way to share data.

**Library.** ``imbalanced-learn`` (checked with 0.14.2), MIT licence (read from the installed
package metadata). Install with ``pip install "healthsynth[baselines]"``.

**How it is used here.** ``sample(n)`` draws how many rows each class gets from the training
class shares, then asks ``SMOTENC`` / ``SMOTEN`` / ``SMOTE`` / ``RandomOverSampler`` with
``sampling_strategy={class: rows it has + rows wanted}`` and keeps the appended rows.
``sample(n, conditions={target: value})`` makes rows of that class only. Conditions on other
columns restrict the method to the training rows that satisfy them (SMOTE interpolates only
between such rows of a class; oversampling copies only such rows), so a rare subgroup
(``sex='m'``) can be grown: a category takes its neighbours' majority value, which over all rows
would almost never be the rare one. SMOTE-NC cannot take missing values, so rows go through
:class:`~._encoder.TableEncoder`: numbers imputed with the training median plus a 0/1 missing
flag treated as a category (so a new row is missing where most of its neighbours are), and the
missing values put back on decoding. ``k_neighbors`` is capped at the class size minus one; a
class with a single training row can only be copied, which is done with a warning.

**The model is the training data.** These methods have no parameters to learn: the model
folder holds the encoded training rows themselves (``model/rows.parquet``, real patients'
records), so treat it with the same care as the data. It holds no pickle.

**Limitations.** SMOTE only fills the space between real rows of a class, so it cannot
reach beyond them; new rows sit close to real ones (low distance to closest record), and with
few rows per class many are near-copies. A category (and a missing flag) takes the majority
value of the neighbours, which sharpens category shares: on survival/pbc (400 rows) a number
missing in 3 % of rows is never missing in SMOTE rows, and the laboratory values missing
together in 26-33 % of rows come out missing 2-6 points more often. Neither method models the
target's relation to other columns beyond keeping rows within their class.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from healthsynth.errors import ConditionError, ModelFolderError, ParameterError
from healthsynth.generators._base import warn
from healthsynth.generators._conditions import Condition
from healthsynth.generators._library import LibraryGenerator, condition_mask, model_file

__all__ = ["SMOTE", "RandomOversampling"]


class _ClassOversampler(LibraryGenerator):
    _module = "imblearn.over_sampling"
    _package = "imbalanced-learn"
    _extra = "baselines"

    seed: int

    def _fit_library(self, lib: ModuleType, frame: pd.DataFrame, data: pd.DataFrame) -> None:
        schema = self.encoder_.schema
        target = schema.target
        if target is None:
            raise ParameterError(
                f"the '{self.name}' generator makes rows class by class, so the schema needs a "
                "target column; set one with infer_schema(data, target=...) or "
                "schema.with_roles(target=...)"
            )
        col = schema[target]
        if col.kind not in ("categorical", "boolean"):
            raise ParameterError(
                f"the '{self.name}' generator needs a categorical or boolean target; '{target}' "
                f"is {col.kind}; declare it categorical (infer_schema(..., kinds={{'{target}': "
                "'categorical'}))"
            )
        spec = self.encoder_.spec(target)
        if spec["type"] != "category":
            raise ParameterError(
                f"the '{self.name}' generator needs at least two classes in the target "
                f"'{target}'; the training data has one"
            )
        self._set_rows(frame)

    def _set_rows(self, frame: pd.DataFrame) -> None:
        target = self.encoder_.schema.target
        assert target is not None
        self.rows_ = frame.reset_index(drop=True)
        y = self.rows_[target].to_numpy(np.int64)
        classes, counts = np.unique(y, return_counts=True)
        self.classes_ = classes
        self.class_counts_ = counts

    def _draw(
        self, lib: ModuleType, m: int, seed: int, conds: Mapping[str, Condition]
    ) -> pd.DataFrame:
        target = self.encoder_.schema.target
        assert target is not None
        classes = self.classes_
        if target in conds:
            allowed = set(self.encoder_.codes_satisfying(target, conds[target]))
            classes = classes[np.array([c in allowed for c in classes])]
        match = self._rows_satisfying({c: v for c, v in conds.items() if c != target})
        y = self.rows_[target].to_numpy(np.int64)
        counts = np.array([(match & (y == c)).sum() for c in classes], float)
        if counts.sum() == 0:
            described = " and ".join(c.describe() for c in conds.values())
            raise ConditionError(
                f"no training row satisfies {described}, so '{self.name}' has no rows to work from"
            )
        rng = np.random.default_rng(seed)
        per_class = rng.multinomial(m, counts / counts.sum())
        X = self.rows_.drop(columns=[target])
        parts = []
        for cls, k in zip(classes, per_class, strict=True):
            if k == 0:
                continue
            # the rows to work from are labelled 1, every other row 0
            group = (match & (y == cls)).astype(np.int64)
            new = self._oversample(lib, X, group, 1, int(k), int(rng.integers(0, 2**31 - 1)))
            new[target] = int(cls)
            parts.append(new)
        frame = pd.concat(parts, ignore_index=True)
        frame = frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
        return self.encoder_.decode(frame[self.encoder_.columns])

    def _rows_satisfying(self, conds: Mapping[str, Condition]) -> np.ndarray:
        """Which training rows satisfy ``conds`` (all of them when there are none)."""
        match = np.ones(len(self.rows_), bool)
        if not conds:
            return match
        decoded = self.encoder_.decode(self.rows_[self.encoder_.columns])
        for name, cond in conds.items():
            match &= condition_mask(decoded[name], cond, self.encoder_.schema[name])
        return match

    def _oversample(
        self, lib: ModuleType, X: pd.DataFrame, y: np.ndarray, cls: int, k: int, seed: int
    ) -> pd.DataFrame:
        raise NotImplementedError

    def _save_model(self, folder: Path) -> None:
        self.rows_.to_parquet(folder / "rows.parquet", index=False)

    def _load_model(self, lib: ModuleType, folder: Path) -> None:
        rows = pd.read_parquet(model_file(folder, "rows.parquet"))
        missing = [c for c in self.encoder_.columns if c not in rows.columns]
        if missing:
            raise ModelFolderError(
                f"model folder {folder.parent} is corrupted: model/rows.parquet lacks column(s) "
                f"{', '.join(missing)}"
            )
        self._set_rows(rows[self.encoder_.columns])


class SMOTE(_ClassOversampler):
    """New rows by interpolation between neighbouring rows of the same class (SMOTE-NC).

    The model folder holds the training rows themselves (``model/rows.parquet``).

    Parameters
    ----------
    k_neighbors
        Neighbours to interpolate with; capped at the class size minus one.
    seed
        Not used in fitting (nothing is learned); kept for a uniform interface. Sampling takes
        its own ``seed``.
    """

    name = "smote"
    _params: ClassVar[dict[str, tuple[str, Any]]] = {
        "k_neighbors": (
            "a whole number >= 1",
            lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
        ),
        "seed": ("a whole number", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    }

    def __init__(self, *, k_neighbors: int = 5, seed: int = 0) -> None:
        self.k_neighbors = k_neighbors
        self.seed = seed

    def _oversample(
        self, lib: ModuleType, X: pd.DataFrame, y: np.ndarray, cls: int, k: int, seed: int
    ) -> pd.DataFrame:
        size = int((y == cls).sum())
        if size == 1 or X.shape[1] == 0:
            if size == 1 and X.shape[1]:
                warn(
                    f"a class of '{self.encoder_.schema.target}' has one training row (among the "
                    "rows meeting the conditions), so SMOTE can only copy it"
                )
            return X[y == cls].iloc[np.zeros(k, np.int64)].reset_index(drop=True)
        numbers = [c for c in X.columns if c in self.encoder_.numbers]
        cats = [i for i, c in enumerate(X.columns) if c not in self.encoder_.numbers]
        options = {
            "sampling_strategy": {cls: size + k},
            "k_neighbors": min(self.k_neighbors, size - 1),
            "random_state": seed,
        }
        if not cats:
            sampler = lib.SMOTE(**options)
        elif not numbers:
            sampler = lib.SMOTEN(**options)
        else:
            sampler = lib.SMOTENC(categorical_features=cats, **options)
        X_res, _ = sampler.fit_resample(X, y)
        return pd.DataFrame(X_res, columns=X.columns).iloc[len(X) :].reset_index(drop=True)


class RandomOversampling(_ClassOversampler):
    """Copies of training rows of each class, drawn with replacement (``RandomOverSampler``).

    Every returned row is a real patient's record: this is the privacy worst case and the
    reference for the imbalance experiments, not a way to share data. The model folder holds
    the training rows themselves (``model/rows.parquet``).

    Parameters
    ----------
    seed
        Not used in fitting (nothing is learned); kept for a uniform interface. Sampling takes
        its own ``seed``.
    """

    name = "random-oversampling"
    _params: ClassVar[dict[str, tuple[str, Any]]] = {
        "seed": ("a whole number", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    }

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed

    def _oversample(
        self, lib: ModuleType, X: pd.DataFrame, y: np.ndarray, cls: int, k: int, seed: int
    ) -> pd.DataFrame:
        size = int((y == cls).sum())
        if X.shape[1] == 0:
            return pd.DataFrame(index=range(k))
        sampler = lib.RandomOverSampler(sampling_strategy={cls: size + k}, random_state=seed)
        X_res, _ = sampler.fit_resample(X, y)
        return pd.DataFrame(X_res, columns=X.columns).iloc[len(X) :].reset_index(drop=True)
