"""A :class:`~healthsynth.data.Dataset` prepared for the health formats (OMOP CDM, MEDS, FHIR).

:func:`prepare` does the work the three formats share: patient IDs become 64-bit integers, times
become calendar datetimes (numbers of days are added to the index date), and every event is
routed to a clinical domain (condition or measurement) with its standard code from an optional
code map. The format modules (``_omop``, ``_meds``, ``_fhir``) only lay the :class:`Prepared`
frames out, and :mod:`healthsynth.data._export` puts the result in place; both import this
module, which imports neither.

The code map is any object with ``get(table, item)`` returning ``None`` or an entry with
``vocabulary``, ``code``, ``description`` and ``unit`` (``healthsynth.knowledge.CodeMap``
fits), so this module needs nothing from other healthsynth subpackages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from healthsynth.data._dataset import Dataset
from healthsynth.data._death import split_code
from healthsynth.errors import DataError, ParameterError

__all__ = [
    "CONDITION",
    "DOMAINS",
    "DRUG",
    "MEASUREMENT",
    "OBSERVATION",
    "PROCEDURE",
    "CodeEntryLike",
    "CodeMapLike",
    "Prepared",
    "index_date_of",
    "prepare",
]

logger = logging.getLogger(__name__)

#: event domains
CONDITION = "condition"
MEASUREMENT = "measurement"
DRUG = "drug"
PROCEDURE = "procedure"
OBSERVATION = "observation"
#: the domains a code map entry may route its item to (an entry's optional ``domain``)
DOMAINS = (CONDITION, MEASUREMENT, DRUG, PROCEDURE, OBSERVATION)

# a time further than this from the index date cannot become a date in any of the formats
_MAX_DAYS = 3_000_000.0
_FIRST = np.datetime64("0001-01-01T00:00:00", "us")
_LAST = np.datetime64("9999-12-31T23:59:59", "us")


class CodeEntryLike(Protocol):
    """What the exports read from a code map entry."""

    vocabulary: str
    code: str
    description: str
    unit: str | None


class CodeMapLike(Protocol):
    """A mapping from ``(table, item)`` to a standard code (``healthsynth.knowledge.CodeMap``)."""

    def get(self, table: str, item: str) -> CodeEntryLike | None:
        """The entry of an item, or None when the item is not mapped."""
        ...


@dataclass(frozen=True)
class Prepared:
    """A dataset ready to lay out in a health format.

    Attributes
    ----------
    patients
        One row per patient, in the patients table's order: ``person_id`` (int64),
        ``source_id`` (the original key as text), ``sex`` (``female``/``male``, else the
        original text, or None), ``sex_raw``, ``birth`` (estimated from the age at the index
        date, NaT without one), ``end`` (end of follow-up), ``died``, ``death_date`` (NaT unless
        died), ``start`` and ``stop`` (the observation period).
    events
        One row per event: ``person_id``, ``when`` (datetime64[us]), ``table``, ``item``,
        ``value`` (float, NaN without one), ``wide`` (from a wide table), ``domain``
        (``condition``/``measurement``, or the entry's own OMOP ``domain``: ``drug``,
        ``procedure``, ``observation``), ``vocabulary``, ``code``, ``description``, ``unit``
        (None where unmapped), ``source_value`` (the entry's code, else the item) and the
        entry's OMOP ``concept_id``, ``source_concept_id`` and ``unit_concept_id`` (nullable
        integers, missing where the entry has none).
    attributes
        Other columns of the patients table, long: ``person_id``, ``column``, ``number``
        (float or NaN) and ``text`` (None for numbers).
    index
        The index date.
    patients_table
        The name of the patients table.
    ids_are_keys
        Whether ``person_id`` is the dataset's own integer key (else 1..n in table order).
    """

    patients: pd.DataFrame
    events: pd.DataFrame
    attributes: pd.DataFrame
    index: np.datetime64
    patients_table: str
    ids_are_keys: bool


def prepare(dataset: Dataset, *, code_map: CodeMapLike | None, index: np.datetime64) -> Prepared:
    """Convert IDs and times and route every event to a domain (see :class:`Prepared`)."""
    p = dataset.patient_table
    keys = p[dataset.key]
    person_id, ids_are_keys = _person_ids(keys)
    to_person = dict(zip(keys.tolist(), person_id.tolist(), strict=True))
    ev = _events(dataset, to_person, code_map=code_map, index=index)
    patients = _patients(dataset, keys, person_id, index=index)
    _observation_periods(dataset, patients, ev, index=index)
    return Prepared(
        patients=patients,
        events=ev,
        attributes=_attributes(dataset, person_id),
        index=index,
        patients_table=dataset.patients,
        ids_are_keys=ids_are_keys,
    )


def _events(
    dataset: Dataset,
    to_person: dict[Any, int],
    *,
    code_map: CodeMapLike | None,
    index: np.datetime64,
) -> pd.DataFrame:
    """Every event but the death event, with its person, datetime, domain and code."""
    raw = dataset.events()
    if dataset.death_event is not None:  # death goes to the patient (OMOP death, FHIR deceased)
        table, item = split_code(dataset.death_event, dataset.tables)
        is_death = (raw["item"] == item) & ((raw["table"] == table) if table else True)
        raw = raw[~is_death].reset_index(drop=True)
    pid = raw[dataset.key].map(to_person)
    if pid.isna().any():
        raise DataError(
            f"the events hold patient ID {raw[dataset.key][pid.isna()].iloc[0]!r}, which is not "
            f"in the patients table '{dataset.patients}'; add the patient or drop the events"
        )
    ev = pd.DataFrame(
        {
            "person_id": pid.to_numpy(np.int64),
            "when": _datetimes(raw[dataset.time], index, f"column '{dataset.time}'"),
            "table": raw["table"].to_numpy(object),
            "item": raw["item"].astype(str).to_numpy(object),
            "value": raw["value"].to_numpy(float),
        }
    )
    ev["wide"] = (
        ev["table"]
        .map({n: dataset.layouts[n].layout == "wide" for n in dataset.event_tables})
        .astype(bool)
    )
    return _route(ev, code_map)


def _patients(
    dataset: Dataset, keys: pd.Series, person_id: np.ndarray, *, index: np.datetime64
) -> pd.DataFrame:
    """One row per patient: IDs, sex, birth and end of follow-up as datetimes."""
    p = dataset.patient_table
    patients = pd.DataFrame(
        {"person_id": person_id, "source_id": [_text(k) for k in keys.tolist()]}
    )
    sex_raw = p[dataset.sex] if dataset.sex else pd.Series([None] * len(p))
    patients["sex_raw"] = [None if _missing(v) else str(v) for v in sex_raw.tolist()]
    patients["sex"] = [_sex(v) for v in patients["sex_raw"]]
    if dataset.age:
        age = pd.to_numeric(p[dataset.age], errors="coerce").to_numpy(float)
        patients["birth"] = _datetimes(
            pd.Series(-age * 365.25), index, f"age column '{dataset.age}'", floor_day=True
        )
    else:
        patients["birth"] = pd.Series(pd.NaT, index=patients.index, dtype="datetime64[us]")
    no_birth = int(patients["birth"].isna().sum())
    if no_birth:
        logger.warning(
            "%d of %d patients have no age at the index date, so their birth year is unknown",
            no_birth,
            len(patients),
        )
    if dataset.end:
        patients["end"] = _datetimes(p[dataset.end], index, f"end column '{dataset.end}'")
    else:
        patients["end"] = pd.Series(pd.NaT, index=patients.index, dtype="datetime64[us]")
    return patients


def _observation_periods(
    dataset: Dataset, patients: pd.DataFrame, ev: pd.DataFrame, *, index: np.datetime64
) -> None:
    """Add each patient's observation period (start, stop) and death to ``patients``."""
    span = ev.groupby("person_id")["when"].agg(["min", "max"])
    first = patients["person_id"].map(span["min"]).astype("datetime64[us]")
    last = patients["person_id"].map(span["max"]).astype("datetime64[us]")
    idx = pd.Series(index, index=patients.index, dtype="datetime64[us]")
    start_from = [first] if dataset.times_are_dates else [first, idx]
    start = pd.concat(start_from, axis=1).min(axis=1)
    stop = pd.concat([last, patients["end"], start], axis=1).max(axis=1)
    start = start.fillna(stop).fillna(idx)
    stop = stop.fillna(start)
    patients["start"] = start.astype("datetime64[us]")
    patients["stop"] = stop.astype("datetime64[us]")
    patients["died"] = dataset.died()
    death = patients["end"].fillna(patients["stop"])
    if dataset.death_event is not None:  # the day of the death event, where there is one
        at = _datetimes(pd.Series(dataset.death_days()), index, "the death event's time")
        death = at.fillna(death)
        # the observation period runs to the death
        patients["stop"] = (
            pd.concat([patients["stop"], at], axis=1).max(axis=1).astype("datetime64[us]")
        )
    patients["death_date"] = death.where(patients["died"]).astype("datetime64[us]")


def _route(ev: pd.DataFrame, code_map: CodeMapLike | None) -> pd.DataFrame:
    """Add the code map's columns and the domain of each event."""
    pairs = ev[["table", "item"]].drop_duplicates().reset_index(drop=True)
    looked = [
        code_map.get(t, i) if code_map is not None else None
        for t, i in zip(pairs["table"], pairs["item"], strict=True)
    ]
    for (t, i), e in zip(pairs[["table", "item"]].itertuples(index=False), looked, strict=True):
        if e is not None and not all(hasattr(e, a) for a in ("vocabulary", "code", "unit")):
            raise ParameterError(
                f"code_map.get({t!r}, {i!r}) returned {type(e).__name__} {e!r}; a code map must "
                "return None or an entry with vocabulary, code, description and unit (e.g. "
                "healthsynth.knowledge.load_code_map(...))"
            )
    # an entry without a vocabulary (learned from an OMOP database without vocabulary tables)
    # names no standard code, but its code is still the item's source value
    coded = [e if e is not None and str(e.vocabulary) else None for e in looked]
    pairs["vocabulary"] = [None if e is None else str(e.vocabulary).upper() for e in coded]
    pairs["code"] = [None if e is None else str(e.code) for e in coded]
    pairs["description"] = [None if e is None else getattr(e, "description", None) for e in looked]
    pairs["unit"] = [None if e is None or not e.unit else str(e.unit) for e in looked]
    pairs["source"] = [None if e is None or not e.code else str(e.code) for e in looked]
    pairs["fixed_domain"] = [
        _entry_domain(e, t, i)
        for t, i, e in zip(pairs["table"], pairs["item"], looked, strict=True)
    ]
    for name in ("concept_id", "source_concept_id", "unit_concept_id"):
        pairs[name] = pd.array([_concept(e, name) for e in looked], dtype="Int64")
    out = ev.merge(pairs, on=["table", "item"], how="left", sort=False)
    vocab = out["vocabulary"]
    condition = ~out["wide"] & ((vocab == "ICD10CM") | (vocab.ne("LOINC") & out["value"].isna()))
    routed = np.where(condition, CONDITION, MEASUREMENT)
    fixed, source = out.pop("fixed_domain"), out.pop("source")
    out["domain"] = fixed.where(fixed.notna(), routed)
    out["source_value"] = source.where(source.notna(), out["item"])
    return out


def _entry_domain(entry: Any, table: str, item: str) -> str | None:
    """The OMOP domain an entry names (None for none); an unknown one is a ParameterError."""
    domain = getattr(entry, "domain", None) if entry is not None else None
    if domain is None:
        return None
    if domain not in DOMAINS:
        raise ParameterError(
            f"the code map entry of ({table!r}, {item!r}) names the domain {domain!r}; it must be "
            f"one of {', '.join(DOMAINS)} or None"
        )
    return str(domain)


def _concept(entry: Any, name: str) -> int | None:
    value = getattr(entry, name, None) if entry is not None else None
    return None if value is None else int(value)


def _attributes(dataset: Dataset, person_id: np.ndarray) -> pd.DataFrame:
    """The patients table's other columns, one row per non-missing value."""
    p = dataset.patient_table
    used = {dataset.key, dataset.sex, dataset.age, dataset.end, dataset.death}
    parts = []
    for col in p.columns:
        if col in used:
            continue
        s = p[col]
        numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
        keep = s.notna().to_numpy(bool)
        parts.append(
            pd.DataFrame(
                {
                    "person_id": person_id[keep],
                    "column": str(col),
                    "number": pd.to_numeric(s[keep], errors="coerce").to_numpy(float)
                    if numeric
                    else np.nan,
                    "text": None if numeric else [_text(v) for v in s[keep].tolist()],
                }
            )
        )
    if not parts:
        return pd.DataFrame({"person_id": [], "column": [], "number": [], "text": []})
    return pd.concat(parts, ignore_index=True)


# -- conversions ----------------------------------------------------------------------------


def index_date_of(value: Any) -> np.datetime64:
    """The calendar date ``value`` names, as ``datetime64[us]``, or a clear error."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        ts = pd.NaT
    if pd.isna(ts):
        raise ParameterError(f"index_date must be a date such as 2020-01-01; got {value!r}")
    if ts.tzinfo is not None:
        ts = ts.tz_convert(None)
    return np.datetime64(ts.to_pydatetime(), "us")


def _datetimes(
    values: pd.Series, index: np.datetime64, what: str, *, floor_day: bool = False
) -> pd.Series:
    """Calendar datetimes (datetime64[us], missing as NaT) from numbers of days or dates."""
    s = pd.Series(values).reset_index(drop=True)
    if pd.api.types.is_datetime64_any_dtype(s):
        if getattr(s.dt, "tz", None) is not None:
            s = s.dt.tz_convert(None)
        return s.astype("datetime64[us]")
    days = pd.to_numeric(s, errors="coerce")
    if days.isna().sum() > s.isna().sum():  # not numbers: try dates
        as_date = pd.to_datetime(s, errors="coerce", format="mixed")
        if getattr(as_date.dt, "tz", None) is not None:
            as_date = as_date.dt.tz_convert(None)
        return as_date.astype("datetime64[us]")
    d = days.to_numpy(float)
    known = np.isfinite(d)
    if (np.abs(d[known]) > _MAX_DAYS).any():
        bad = d[known][np.abs(d[known]) > _MAX_DAYS][0]
        raise DataError(
            f"{what} holds {bad:g} days, which is too far from the index date to be a "
            "calendar date; check the time unit (days are expected)"
        )
    if floor_day:
        secs = np.where(known, np.round(np.nan_to_num(d)) * 86400, 0)
    else:
        secs = np.where(known, np.round(np.nan_to_num(d) * 86400), 0)
    out = index + secs.astype(np.int64).astype("timedelta64[s]")
    out = out.astype("datetime64[us]")
    out[~known] = np.datetime64("NaT")
    if ((out[known] < _FIRST) | (out[known] > _LAST)).any():
        raise DataError(
            f"{what} gives dates outside the years 1 to 9999 from the index date "
            f"{np.datetime_as_string(index, unit='D')}; check the times or the index date"
        )
    return pd.Series(out, dtype="datetime64[us]")


def _person_ids(keys: pd.Series) -> tuple[np.ndarray, bool]:
    """The keys themselves when they are integers that fit int64, else 1..n."""
    k = keys
    if pd.api.types.is_integer_dtype(k) or (
        pd.api.types.is_float_dtype(k) and np.all(np.mod(k.to_numpy(float), 1) == 0)
    ):
        values = k.to_numpy(float) if pd.api.types.is_float_dtype(k) else k.to_numpy()
        lo, hi = np.iinfo(np.int64).min, np.iinfo(np.int64).max
        if len(values) and lo <= values.min() and values.max() <= hi:
            return values.astype(np.int64), True
    return np.arange(1, len(k) + 1, dtype=np.int64), False


def _sex(v: str | None) -> str | None:
    if v is None:
        return None
    low = v.strip().lower()
    return {"f": "female", "female": "female", "m": "male", "male": "male"}.get(low, v)


def _missing(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _text(v: Any) -> str:
    """A key or value as text: integral floats without ``.0``."""
    if isinstance(v, float | np.floating) and np.isfinite(v) and float(v).is_integer():
        return str(int(v))
    if isinstance(v, np.generic):
        return str(v.item())
    return str(v)
