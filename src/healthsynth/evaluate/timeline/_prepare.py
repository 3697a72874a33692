"""One view of a timeline dataset that every timeline metric reads, built once per evaluation.

A :class:`Timelines` holds a (possibly subsampled) :class:`~healthsynth.data.Dataset` as plain
arrays: the patients table, and every event as a row of ``p`` (the patient's position in the
patients table), ``t`` (days as a float; calendar dates become days since 1970-01-01),
``table``, ``item``, ``label`` (``table/item``) and ``value``. Per-patient matrices (presence,
counts, first times) are computed on demand and kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Dataset
from healthsynth.errors import ParameterError

__all__ = ["Timelines", "pearson_r2", "prepared", "r2_score", "ITEM_SEP"]

#: separator between table and item in a label (``events/diabetes``)
ITEM_SEP = "/"


class Timelines:
    """A dataset prepared for the timeline metrics.

    Parameters
    ----------
    dataset
        The dataset; it is only read.
    max_patients
        Keep at most this many patients (a seeded random subset, all their events).
    seed
        Seed of that subset.
    """

    def __init__(self, dataset: Dataset, *, max_patients: int | None = None, seed: int = 0):
        if not isinstance(dataset, Dataset):
            raise ParameterError(
                f"a timeline metric needs a healthsynth.data.Dataset; got {type(dataset).__name__}"
            )
        self.dataset = dataset
        self.key = dataset.key
        p = dataset.patient_table
        self.n_patients_total = len(p)
        self.subsampled = max_patients is not None and len(p) > max_patients
        if self.subsampled:
            assert max_patients is not None
            pick = np.sort(np.random.default_rng(seed).choice(len(p), max_patients, replace=False))
            p = p.iloc[pick]
        self.patients = p.reset_index(drop=True)
        self.dates = dataset.times_are_dates
        ev = dataset.events()
        pos = pd.Index(self.patients[self.key]).get_indexer(ev[dataset.key])
        keep = pos >= 0
        ev = ev[keep]
        self.events = pd.DataFrame(
            {
                "p": pos[keep].astype(np.int64),
                "t": _days(ev[dataset.time]),
                "table": ev["table"].to_numpy(dtype=object),
                "item": ev["item"].to_numpy(dtype=object),
                "label": (ev["table"] + ITEM_SEP + ev["item"]).to_numpy(dtype=object),
                "value": ev["value"].to_numpy(float),
            }
        )
        self._cache: dict[Any, Any] = {}

    # -- sizes and patient attributes ----------------------------------------------------
    @property
    def n(self) -> int:
        """Number of (kept) patients."""
        return len(self.patients)

    def sizes(self) -> dict[str, Any]:
        """Patients and events used, and whether they are a subsample."""
        return {
            "patients": self.n,
            "patients_total": self.n_patients_total,
            "events": int(len(self.events)),
            "subsampled": bool(self.subsampled),
        }

    @cached_property
    def end(self) -> np.ndarray:
        """End of follow-up per patient in days (NaN without an end column)."""
        if self.dataset.end is None:
            return np.full(self.n, np.nan)
        return _days(self.patients[self.dataset.end])

    @cached_property
    def died(self) -> np.ndarray:
        """Whether each patient died at the end of follow-up."""
        return self.dataset.died(self.patients)

    @cached_property
    def death_day(self) -> np.ndarray:
        """Day of the death event per patient (NaN without one)."""
        return _days(pd.Series(self.dataset.death_days(self.patients)))

    @cached_property
    def sex(self) -> np.ndarray:
        """``female``, ``male`` or ``""`` (unknown) per patient."""
        if self.dataset.sex is None:
            return np.full(self.n, "", dtype=object)
        s = self.patients[self.dataset.sex].astype("string").str.strip().str.lower()
        out = s.map({"f": "female", "female": "female", "m": "male", "male": "male"})
        return out.fillna("").to_numpy(dtype=object)

    @cached_property
    def age(self) -> np.ndarray:
        """Age in years at the index date per patient (NaN when unknown)."""
        if self.dataset.age is None:
            return np.full(self.n, np.nan)
        return pd.to_numeric(self.patients[self.dataset.age], errors="coerce").to_numpy(float)

    # -- items ---------------------------------------------------------------------------
    @cached_property
    def labels(self) -> list[str]:
        """Every item label that occurs, sorted."""
        return sorted(pd.unique(self.events["label"]).tolist())

    @cached_property
    def items(self) -> dict[str, tuple[str, str]]:
        """Label -> (table, item) for every item that occurs."""
        pairs = self.events[["label", "table", "item"]].drop_duplicates("label")
        return {lab: (t, i) for lab, t, i in pairs.itertuples(index=False)}

    @cached_property
    def value_labels(self) -> list[str]:
        """Items that carry numbers (lab results, measured columns), sorted."""
        has = self.events.loc[np.isfinite(self.events["value"].to_numpy()), "label"]
        return sorted(pd.unique(has).tolist())

    @cached_property
    def code_labels(self) -> list[str]:
        """Items without numbers (diagnoses and other coded events), sorted."""
        values = set(self.value_labels)
        return [lab for lab in self.labels if lab not in values]

    def _codes(self, labels: Sequence[str]) -> np.ndarray:
        return pd.Categorical(self.events["label"], categories=list(labels)).codes

    def presence(self, labels: Sequence[str]) -> np.ndarray:
        """Boolean patients × labels: at least one such event."""
        key = ("presence", tuple(labels))
        if key not in self._cache:
            codes = self._codes(labels)
            m = np.zeros((self.n, len(labels)), bool)
            ok = codes >= 0
            m[self.events["p"].to_numpy()[ok], codes[ok]] = True
            self._cache[key] = m
        return self._cache[key]  # type: ignore[no-any-return]

    def counts(self, labels: Sequence[str], *, until: float | None = None) -> np.ndarray:
        """Float patients × labels: number of such events (at or before ``until`` if given)."""
        key = ("counts", tuple(labels), until)
        if key not in self._cache:
            codes = self._codes(labels)
            ok = codes >= 0
            if until is not None:
                ok &= self.events["t"].to_numpy() <= until
            m = np.zeros((self.n, len(labels)))
            np.add.at(m, (self.events["p"].to_numpy()[ok], codes[ok]), 1.0)
            self._cache[key] = m
        return self._cache[key]  # type: ignore[no-any-return]

    def first_times(self, labels: Sequence[str]) -> np.ndarray:
        """Float patients × labels: day of the first such event (NaN when none)."""
        key = ("first", tuple(labels))
        if key not in self._cache:
            codes = self._codes(labels)
            ok = codes >= 0
            m = np.full((self.n, len(labels)), np.inf)
            t = self.events["t"].to_numpy()
            np.minimum.at(m, (self.events["p"].to_numpy()[ok], codes[ok]), t[ok])
            m[np.isinf(m)] = np.nan
            self._cache[key] = m
        return self._cache[key]  # type: ignore[no-any-return]


def prepared(
    data: Dataset | Timelines | None, *, max_patients: int | None = None, seed: int = 0
) -> Timelines | None:
    """``data`` as :class:`Timelines` (already prepared ones are passed through)."""
    if data is None or isinstance(data, Timelines):
        return data
    return Timelines(data, max_patients=max_patients, seed=seed)


def _days(s: pd.Series) -> np.ndarray:
    """Times as float days: numbers as they are, dates as days since 1970-01-01."""
    if pd.api.types.is_datetime64_any_dtype(s):
        t = pd.to_datetime(s)
        out = (t - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy(float) / 86400.0
        return np.where(t.isna().to_numpy(), np.nan, out)
    return pd.to_numeric(s, errors="coerce").to_numpy(float)


def r2_score(real: np.ndarray, synthetic: np.ndarray) -> float:
    """Coefficient of determination of ``synthetic`` as a prediction of ``real``.

    ``1 - SS_res / SS_tot``: 1 when equal, 0 when no better than the real mean, negative when
    worse; NaN when the real values do not vary.
    """
    real, synthetic = np.asarray(real, float), np.asarray(synthetic, float)
    ss_tot = float(((real - real.mean()) ** 2).sum())
    if ss_tot == 0:
        return float("nan")
    return 1.0 - float(((synthetic - real) ** 2).sum()) / ss_tot


def pearson_r2(real: np.ndarray, synthetic: np.ndarray) -> float:
    """Squared Pearson correlation (NaN when either side does not vary)."""
    real, synthetic = np.asarray(real, float), np.asarray(synthetic, float)
    if len(real) < 2 or real.std() == 0 or synthetic.std() == 0:
        return float("nan")
    return float(np.corrcoef(real, synthetic)[0, 1] ** 2)
