"""Standard exports of a :class:`~healthsynth.data.Dataset`: CSV, Parquet, OMOP CDM, MEDS, FHIR.

:func:`export_dataset_as` is the one entry point. The three health formats share the
preparation of :mod:`healthsynth.data._prepared` (integer patient IDs, calendar datetimes, a
clinical domain and standard code for every event); the format modules (``_omop``, ``_meds``,
``_fhir``) only lay the prepared frames out, and this module writes the output folder through a
temporary folder that replaces it only when every file is complete. ``docs/timelines-export.md``
describes the result.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Literal

from healthsynth.data._dataset import Dataset
from healthsynth.data._io import atomic_folder
from healthsynth.data._prepared import (
    CONDITION,
    MEASUREMENT,
    CodeMapLike,
    Prepared,
    index_date_of,
    prepare,
)
from healthsynth.errors import MissingExtraError, ParameterError

# CONDITION, MEASUREMENT, Prepared and prepare stay importable from here for existing callers
__all__ = [
    "CONDITION",
    "EXPORT_FORMATS",
    "MEASUREMENT",
    "Prepared",
    "export_dataset_as",
    "optional_module",
    "prepare",
]

#: the formats :func:`export_dataset_as` writes
EXPORT_FORMATS = ("csv", "parquet", "omop", "meds", "fhir")

ExportFormat = Literal["csv", "parquet", "omop", "meds", "fhir"]


def export_dataset_as(
    dataset: Dataset,
    folder: str | Path,
    *,
    fmt: ExportFormat,
    code_map: CodeMapLike | None = None,
    index_date: str = "2020-01-01",
) -> Path:
    """Write a dataset in a standard format.

    Parameters
    ----------
    dataset
        The multi-table dataset to write.
    folder
        The output folder. ``csv`` and ``parquet`` write one file per table into it. ``omop``,
        ``meds`` and ``fhir`` build the whole folder in a temporary folder next to it and then
        put it in place, so a failed export leaves nothing half-written; the folder must be new,
        empty, or an earlier export of the same format (which is replaced).
    fmt
        ``csv`` / ``parquet`` (the tables as they are), ``omop`` (OMOP CDM v5.4 tables person,
        observation_period, condition_occurrence, measurement and death as Parquet), ``meds``
        (MEDS 0.4: ``data/train/0.parquet`` and ``metadata/``) or ``fhir`` (one FHIR R4 Bundle
        of type collection per patient, ``Patient-<id>.json``).
    code_map
        Standard codes of the dataset's items (e.g. ``load_code_map("nafld")``): an object with
        ``get(table, item)`` returning None or an entry with ``vocabulary`` (``ICD10CM``,
        ``LOINC``), ``code``, ``description`` and ``unit``. Without one every item is exported
        under its own name.
    index_date
        The calendar date that day 0 stands for: times given as numbers of days become
        ``index_date + days``, and ages at the index date give the birth year. Ignored by
        ``csv`` and ``parquet``.

    Returns
    -------
    Path
        The output folder.

    Raises
    ------
    ParameterError
        An unknown format, an index date that is not a date, a code map without ``get``, or an
        output folder that holds other files.
    DataError
        A time too far from the index date to be a calendar date, or events of a patient who
        is not in the patients table.
    MissingExtraError
        ``meds`` or ``fhir`` without their libraries (the ``timelines`` extra).
    """
    if fmt not in EXPORT_FORMATS:
        raise ParameterError(f"fmt must be one of {', '.join(EXPORT_FORMATS)}; got {fmt!r}")
    if not isinstance(dataset, Dataset):
        raise ParameterError(
            f"dataset must be a healthsynth.data.Dataset; got {type(dataset).__name__}"
        )
    if code_map is not None and not callable(getattr(code_map, "get", None)):
        raise ParameterError(
            "code_map must have a get(table, item) method (e.g. "
            f"healthsynth.knowledge.load_code_map(...)); got {type(code_map).__name__}"
        )
    folder = Path(folder)
    if fmt in ("csv", "parquet"):
        return dataset.write(folder, fmt=fmt)
    index = index_date_of(index_date)
    if fmt == "omop":
        from healthsynth.data._omop import write_omop

        prepared = prepare(dataset, code_map=code_map, index=index)
        with atomic_folder(folder, action="write the OMOP export", kind="OMOP export") as tmp:
            write_omop(prepared, tmp)
    elif fmt == "meds":
        from healthsynth.data._meds import write_meds

        meds = optional_module("meds", "meds", "Writing MEDS")
        prepared = prepare(dataset, code_map=code_map, index=index)
        with atomic_folder(folder, action="write the MEDS export", kind="MEDS export") as tmp:
            write_meds(prepared, tmp, meds=meds, name=folder.name)
    else:
        from healthsynth.data._fhir import write_fhir

        optional_module("fhir.resources", "fhir.resources", "Writing FHIR")
        prepared = prepare(dataset, code_map=code_map, index=index)
        with atomic_folder(folder, action="write the FHIR export", kind="FHIR export") as tmp:
            write_fhir(prepared, tmp)
    return folder


# -- optional libraries and the output folder ------------------------------------------------


def optional_module(module: str, package: str, purpose: str) -> ModuleType:
    """Import an optional library or raise :class:`MissingExtraError` naming the extra."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        root = module.split(".")[0]
        if e.name is not None and e.name.split(".")[0] != root:
            raise
        raise MissingExtraError(package, "timelines", purpose) from None
