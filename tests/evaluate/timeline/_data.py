"""Real NAFLD timelines as stand-ins for synthetic data, and ways to break them."""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np
import pandas as pd

from healthsynth.data import Dataset, load_timelines


@lru_cache(maxsize=1)
def nafld_three_way() -> tuple[Dataset, Dataset, Dataset]:
    """Training, holdout and a third disjoint set of 750 real NAFLD patients each."""
    ds = load_timelines("nafld", max_patients=2250, seed=0)
    train, rest = ds.split(holdout=2 / 3, seed=0)
    holdout, fresh = rest.split(holdout=0.5, seed=1)
    return train, holdout, fresh


def with_tables(ds: Dataset, **tables: pd.DataFrame) -> Dataset:
    """The dataset with some tables replaced (no validation: broken data on purpose)."""
    new = dict(ds.tables)
    new.update(tables)
    return dataclasses.replace(ds, tables=new)


def shuffled_items(ds: Dataset, seed: int = 0) -> Dataset:
    """Diagnoses shuffled across all events: each item's count kept, links between items lost."""
    ev = ds.tables["events"].copy()
    ev["event"] = np.random.default_rng(seed).permutation(ev["event"].to_numpy())
    return with_tables(ds, events=ev)


def reversed_times(ds: Dataset) -> Dataset:
    """Every diagnosis moved to minus its day: the timeline played backwards."""
    ev = ds.tables["events"].copy()
    ev["days"] = -ev["days"]
    return with_tables(ds, events=ev)


def one_patient_for_all(ds: Dataset) -> Dataset:
    """The diagnoses of the patient with the most of them, given to every patient."""
    ev = ds.tables["events"]
    top = ev["id"].value_counts().index[0]
    mine = ev[ev["id"] == top]
    copied = pd.concat([mine.assign(id=i) for i in ds.patient_table["id"]], ignore_index=True)
    return with_tables(ds, events=copied)


def scaled_labs(ds: Dataset, factor: float = 3.0) -> Dataset:
    """Every lab value multiplied by ``factor``."""
    labs = ds.tables["labs"].copy()
    labs["value"] = labs["value"] * factor
    return with_tables(ds, labs=labs)


def tables_copy(ds: Dataset) -> dict[str, pd.DataFrame]:
    """Deep copies of the tables, to check that nothing was mutated."""
    return {n: df.copy(deep=True) for n, df in ds.tables.items()}
