"""Mappings from a dataset's own event names to standard codes (ICD-10-CM, LOINC).

A mapping is a small CSV with one row per ``(table, item)``: the vocabulary (``ICD10CM`` or
``LOINC``), the code, the unit, a plausible range ``[low, high]`` for values, and a note saying
why the code was chosen. Packaged mappings live in ``knowledge/mappings/`` (``nafld``,
``pbcseq``); ``docs/timelines.md`` lists them. ICD-10-CM descriptions come from the code system
itself (``simple_icd_10_cm``); LOINC names are the long common names, kept in the file.

Items the mapping does not know are kept (events are never dropped for it) and reported by
:meth:`CodeMap.unmapped`.

An entry may also carry OMOP CDM concept IDs (``concept_id``, ``source_concept_id``,
``unit_concept_id``) and the CDM ``domain`` its events belong to. Mappings learned from an OMOP
database (:meth:`CodeMap.from_frame` on ``healthsynth.data.read_omop(...).concepts``) fill them,
so synthetic OMOP output carries the source database's concept IDs; a mapping CSV may give
``concept_id`` as an optional column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.errors import DataFileError, ParameterError
from healthsynth.knowledge._icd10cm import (
    DEFAULT_ADULT_MIN_AGE,
    DEFAULT_CHILD_MAX_AGE,
    DEFAULT_MATERNAL_AGE,
    DEFAULT_NEWBORN_MAX_AGE,
    _cm,
    group_prefixes,
)
from healthsynth.knowledge._rules import normalize_code

__all__ = ["CodeEntry", "CodeMap", "load_code_map", "PACKAGED_CODE_MAPS"]

#: packaged mappings, by name
PACKAGED_CODE_MAPS = ("nafld", "pbcseq")

_COLUMNS = ("table", "item", "vocabulary", "code", "unit", "low", "high", "note")
_VOCABULARIES = ("ICD10CM", "LOINC")
#: OMOP CDM event domains an entry may name
DOMAINS = ("condition", "measurement", "drug", "procedure", "observation")


@dataclass(frozen=True)
class CodeEntry:
    """One mapped item."""

    table: str
    item: str
    vocabulary: str
    code: str
    description: str
    unit: str | None
    low: float | None
    high: float | None
    note: str
    concept_id: int | None = None
    source_concept_id: int | None = None
    unit_concept_id: int | None = None
    domain: str | None = None

    def sexes(self) -> tuple[str, ...]:
        """The sexes (``female``, ``male``) this code allows: both unless ICD-10-CM says one."""
        if self.vocabulary != "ICD10CM":
            return ("female", "male")
        code = normalize_code(self.code)
        for group in ("female", "male"):
            if any(code.startswith(p) for p in group_prefixes(group)):
                return (group,)
        return ("female", "male")

    def ages(self) -> tuple[float, float]:
        """The age band (years) this code allows; ``(0, inf)`` unless ICD-10-CM limits it."""
        if self.vocabulary != "ICD10CM":
            return (0.0, float("inf"))
        code = normalize_code(self.code)
        lo, hi = 0.0, float("inf")
        bands = (
            ("maternal", DEFAULT_MATERNAL_AGE[0], DEFAULT_MATERNAL_AGE[1]),
            ("newborn", 0.0, DEFAULT_NEWBORN_MAX_AGE),
            ("child", 0.0, DEFAULT_CHILD_MAX_AGE),
            ("adult", DEFAULT_ADULT_MIN_AGE, float("inf")),
        )
        for group, a, b in bands:
            if any(code.startswith(p) for p in group_prefixes(group)):
                lo, hi = max(lo, a), min(hi, b)
        return (lo, hi)


class CodeMap:
    """A table of :class:`CodeEntry` keyed by ``(table, item)``."""

    def __init__(self, entries: Iterable[CodeEntry], *, name: str = "custom") -> None:
        self.name = name
        self.entries: dict[tuple[str, str], CodeEntry] = {(e.table, e.item): e for e in entries}

    def get(self, table: str, item: str) -> CodeEntry | None:
        """The entry for an item, or None when the mapping does not know it."""
        return self.entries.get((table, str(item)))

    def unmapped(self, events: pd.DataFrame) -> pd.DataFrame:
        """Items of a long event frame (``table``, ``item``) the mapping does not know, counted."""
        pairs = events.groupby(["table", "item"], sort=True).size().rename("events")
        keep = [(t, i) not in self.entries for t, i in pairs.index]
        return pairs[keep].reset_index()

    def to_frame(self) -> pd.DataFrame:
        """All entries as a DataFrame."""
        return pd.DataFrame([e.__dict__ for e in self.entries.values()])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the rows of the CSV plus descriptions)."""
        return {"name": self.name, "entries": [dict(e.__dict__) for e in self.entries.values()]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CodeMap:
        """Inverse of :meth:`to_dict`."""
        return cls((CodeEntry(**e) for e in d["entries"]), name=d.get("name", "custom"))

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, name: str = "custom") -> CodeMap:
        """Entries from a DataFrame with :class:`CodeEntry`'s columns (inverse of :meth:`to_frame`).

        Columns other than the entry's fields (e.g. an event count) are ignored; the optional
        fields may be absent. ``healthsynth.data.read_omop(...).concepts`` is such a frame.
        """
        names = [f.name for f in fields(CodeEntry)]
        required = names[: names.index("note") + 1]
        missing = [c for c in required if c not in frame.columns]
        if missing:
            raise ParameterError(
                f"a code mapping frame needs the columns {', '.join(required)}; it lacks "
                f"{', '.join(missing)}"
            )
        entries = []
        for row in frame.to_dict("records"):
            values = {k: _plain(row[k]) for k in names if k in row}
            for k in ("concept_id", "source_concept_id", "unit_concept_id"):
                if values.get(k) is not None:
                    values[k] = int(values[k])
            for k in ("low", "high"):
                if values.get(k) is not None:
                    values[k] = float(values[k])
            entries.append(CodeEntry(**values))
        return cls(entries, name=name)


def load_code_map(source: str | Path) -> CodeMap:
    """Load a packaged mapping by name (``nafld``, ``pbcseq``) or a mapping CSV by path.

    Raises :class:`~healthsynth.errors.DataFileError` naming the file, row and column for a
    missing column, an unknown vocabulary, an ICD-10-CM code the code system does not know, or
    a range that is not two numbers with low <= high.
    """
    if isinstance(source, str) and source in PACKAGED_CODE_MAPS:
        ref = resources.files("healthsynth.knowledge") / "mappings" / f"{source}.csv"
        with resources.as_file(ref) as p:
            return _read(Path(p), name=source)
    path = Path(source)
    if not path.exists():
        raise ParameterError(
            f"code mapping '{source}' is neither a packaged mapping "
            f"({', '.join(PACKAGED_CODE_MAPS)}) nor an existing CSV file"
        )
    return _read(path, name=path.stem)


def _read(path: Path, *, name: str) -> CodeMap:
    from healthsynth.data._io import check_field_counts, csv_separator

    try:
        text = path.read_bytes().decode("utf-8-sig")
        what = f"code mapping {path}"
        sep = csv_separator(text, what=what) if text.strip() else ","  # as read_table reads
        rows = csv.reader(io.StringIO(text, newline=""), delimiter=sep, skipinitialspace=True)
        header = next(rows, [])
        check_field_counts(text, len(header), what=what, delimiter=sep)
        df = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            dtype=str,
            keep_default_na=False,
            index_col=False,
            skipinitialspace=True,
        )
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        detail = " ".join(str(e).split())  # pandas' messages end in a line break
        raise DataFileError(f"code mapping {path} is not a readable CSV ({detail})") from None
    missing = [c for c in _COLUMNS[:4] if c not in df.columns]
    if missing:
        raise DataFileError(
            f"code mapping {path} lacks the column(s) {', '.join(missing)}; it needs "
            f"{', '.join(_COLUMNS)}"
        )
    cm = _cm()
    entries = []
    for i, row in enumerate(df.to_dict("records"), start=2):
        where = f"code mapping {path}, line {i}"
        vocab = row["vocabulary"].strip().upper()
        code = row["code"].strip()
        if vocab not in _VOCABULARIES:
            raise DataFileError(
                f"{where}: vocabulary '{row['vocabulary']}' is not one of "
                f"{', '.join(_VOCABULARIES)}"
            )
        if vocab == "ICD10CM":
            if not cm.is_valid_item(code):
                raise DataFileError(f"{where}: '{code}' is not an ICD-10-CM code")
            description = cm.get_description(code)
        else:
            description = row.get("note", "").strip() or code
        low, high = (_number(row.get(k, ""), where, k, comma=sep == ";") for k in ("low", "high"))
        concept = _number(row.get("concept_id", ""), where, "concept_id", comma=False)
        if concept is not None and (not concept.is_integer() or concept < 0):
            raise DataFileError(f"{where}: concept_id '{row['concept_id']}' is not a concept ID")
        if low is not None and high is not None and low > high:
            raise DataFileError(f"{where}: low {low} is above high {high}")
        entries.append(
            CodeEntry(
                table=row["table"].strip(),
                item=row["item"].strip(),
                vocabulary=vocab,
                code=code,
                description=description,
                unit=(row.get("unit") or "").strip() or None,
                low=low,
                high=high,
                note=(row.get("note") or "").strip(),
                concept_id=None if concept is None else int(concept),
            )
        )
    dup = pd.Series([(e.table, e.item) for e in entries]).duplicated()
    if dup.any():
        twice = entries[int(np.flatnonzero(dup)[0])]
        raise DataFileError(
            f"code mapping {path} lists ({twice.table}, {twice.item}) twice; keep one row"
        )
    return CodeMap(entries, name=name)


def _plain(v: Any) -> Any:
    """A frame cell as a plain Python value; missing values (NaN, NA, None) as None."""
    if isinstance(v, (list, tuple, dict)):
        return v
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return v.item() if isinstance(v, np.generic) else v


def _number(text: str, where: str, column: str, *, comma: bool) -> float | None:
    """A number of the mapping; ``comma``: a decimal comma is read (a ``;`` file)."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = float(text.replace(",", ".") if comma and text.count(",") == 1 else text)
    except ValueError:
        raise DataFileError(f"{where}: {column} '{text}' is not a number") from None
    if not np.isfinite(value):
        raise DataFileError(f"{where}: {column} '{text}' is not a finite number")
    return value
