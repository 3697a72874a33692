"""The queries :func:`healthsynth.data.read_omop` runs against an OMOP CDM, batch by batch.

:class:`CdmReader` reads ``person``, ``observation_period`` and ``death`` (one row per person),
one event domain at a time (``person_id``, day, item code, value), the concept details of the
items in use, and names from the ``concept`` table. Dates become day numbers and values doubles
in the database; each batch is turned into compact arrays at once. Driver errors become one
sentence (:meth:`CdmReader.guard`): text that is not UTF-8 a :class:`DataError`, anything else a
:class:`DatabaseError`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data._db import Database
from healthsynth.errors import DatabaseError, DataError, ParameterError

__all__ = ["KEY", "OMOP_DOMAINS", "TIME", "CdmReader"]

#: the patient ID and time columns of the dataset read
KEY, TIME = "person_id", "days"
_EPOCH = "DATE '1970-01-01'"


@dataclass(frozen=True)
class _Domain:
    table: str
    prefix: str
    date: str
    value: str | None  # the numeric value column
    unit: bool  # has unit_concept_id / unit_source_value


#: the event domains and their CDM tables
OMOP_DOMAINS: dict[str, _Domain] = {
    "condition": _Domain("condition_occurrence", "condition", "condition_start_date", None, False),
    "drug": _Domain("drug_exposure", "drug", "drug_exposure_start_date", None, False),
    "procedure": _Domain("procedure_occurrence", "procedure", "procedure_date", None, False),
    "measurement": _Domain(
        "measurement", "measurement", "measurement_date", "value_as_number", True
    ),
    "observation": _Domain(
        "observation", "observation", "observation_date", "value_as_number", True
    ),
}


class CdmReader:
    """Queries of one read, with driver errors turned into one-sentence errors."""

    def __init__(self, db: Database, schema: str, batch_size: int) -> None:
        self.db, self.schema, self.size = db, schema, batch_size

    def table(self, name: str) -> str:
        return self.db.qualify(self.schema, name)

    def guard(self, what: str, run: Any, table: str | None = None) -> Any:
        try:
            return run()
        except (DatabaseError, DataError, ParameterError):
            raise
        except Exception as e:  # the driver's own errors
            text = self.db.scrub(str(getattr(e, "orig", e)))
            if isinstance(e, UnicodeDecodeError) or "invalid byte sequence" in text:
                where = f"OMOP table {table}" if table else "a table"
                raise DataError(
                    f"{where} in schema '{self.schema}' at {self.db.display} holds text that is "
                    f"not valid UTF-8 ({text[:120]}); convert its source values to UTF-8"
                ) from None
            raise self.db.fail(
                what, e, "check that the schema is an OMOP CDM v5.x and the user may read it"
            ) from None

    def stream(self, sql: str, what: str, table: str) -> Iterable[dict[str, np.ndarray]]:
        it = iter(self.db.batches(sql, size=self.size))
        while True:
            batch = self.guard(what, lambda: next(it, None), table)
            if batch is None:
                return
            yield batch

    def persons(self, *, has_death: bool) -> pd.DataFrame:
        cols = set(self.guard("reading person", lambda: self.db.columns(self.schema, "person")))
        birth = f"CAST(birth_datetime AS date) - {_EPOCH}" if "birth_datetime" in cols else "NULL"
        sql = (
            "SELECT person_id, gender_concept_id, gender_source_value, year_of_birth, "
            f"month_of_birth, day_of_birth, {birth} AS birth_day FROM {self.table('person')}"
        )
        parts = [pd.DataFrame(b) for b in self.stream(sql, "reading person", "person")]
        p = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["person_id"])
        op = (
            f"SELECT person_id, min(observation_period_start_date) - {_EPOCH} AS start, "
            f"max(observation_period_end_date) - {_EPOCH} AS stop "
            f"FROM {self.table('observation_period')} GROUP BY person_id"
        )
        periods = pd.concat(
            [
                pd.DataFrame(b)
                for b in self.stream(op, "reading observation_period", "observation_period")
            ]
            or [pd.DataFrame(columns=["person_id", "start", "stop"])],
            ignore_index=True,
        )
        p = p.merge(periods, on="person_id", how="left")
        if has_death:
            dsql = (
                f"SELECT person_id, min(death_date) - {_EPOCH} AS death_day "
                f"FROM {self.table('death')} GROUP BY person_id"
            )
            deaths = pd.concat(
                [pd.DataFrame(b) for b in self.stream(dsql, "reading death", "death")]
                or [pd.DataFrame(columns=["person_id", "death_day"])],
                ignore_index=True,
            )
            p = p.merge(deaths, on="person_id", how="left")
        else:
            p["death_day"] = np.nan
        return p.sort_values("person_id", kind="stable").reset_index(drop=True)

    def events(
        self, spec: _Domain, person_ids: pd.Series, index: np.ndarray, only: np.ndarray | None
    ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
        """One domain's events (person_id, days, concept[, value]) and its items' concepts."""
        t, pre = self.table(spec.table), spec.prefix
        cols = set(
            self.guard(f"reading {spec.table}", lambda: self.db.columns(self.schema, spec.table))
        )
        where = ""
        if only is not None:
            where = f" WHERE person_id IN ({', '.join(str(int(i)) for i in only)})"
        value = f", CAST({spec.value} AS double precision) AS value" if spec.value else ""
        sql = (
            f"SELECT person_id, {spec.date} - {_EPOCH} AS day, {pre}_concept_id AS concept, "
            f"CASE WHEN {pre}_concept_id IS NULL OR {pre}_concept_id = 0 "
            f"THEN {pre}_source_value END AS source{value} FROM {t}{where}"
        )
        items: dict[str, int] = {}
        pid_parts, day_parts, item_parts, value_parts = [], [], [], []
        dropped = 0
        for b in self.stream(sql, f"reading {spec.table}", spec.table):
            concept = pd.to_numeric(pd.Series(b["concept"]), errors="coerce").to_numpy(float)
            source = pd.Series(b["source"], dtype=object)
            name = np.where(
                np.nan_to_num(concept) != 0,
                pd.Series(concept).map(lambda c: f"{int(c)}" if c == c and c else None),
                source.map(lambda s: s.strip() if isinstance(s, str) and s.strip() else None),
            )
            keep = (
                pd.notna(name)
                & pd.notna(pd.to_numeric(pd.Series(b["day"]), errors="coerce")).to_numpy()
            )
            dropped += int((~keep).sum())
            codes = np.array([items.setdefault(n, len(items)) for n in name[keep]], dtype=np.int32)
            pid_parts.append(np.asarray(b["person_id"])[keep].astype(np.int64))
            day_parts.append(pd.to_numeric(pd.Series(b["day"]))[keep].to_numpy(np.int64))
            item_parts.append(codes)
            if spec.value:
                value_parts.append(
                    pd.to_numeric(pd.Series(b["value"]), errors="coerce").to_numpy(float)[keep]
                )
        pid = np.concatenate(pid_parts) if pid_parts else np.zeros(0, np.int64)
        day = np.concatenate(day_parts) if day_parts else np.zeros(0, np.int64)
        code = np.concatenate(item_parts) if item_parts else np.zeros(0, np.int32)
        # to each person's index date; events of persons not read (no observation period) go
        pos = pd.Index(person_ids.to_numpy(np.int64)).get_indexer(pid)
        known = pos >= 0
        names = np.array(list(items), dtype=object)
        frame = pd.DataFrame(
            {
                KEY: pid[known],
                TIME: day[known] - index[pos[known]],
                "concept": pd.Categorical.from_codes(code[known], categories=names)
                if len(names)
                else pd.Categorical([]),
            }
        )
        frame["concept"] = frame["concept"].astype(object)
        if spec.value:
            values = np.concatenate(value_parts) if value_parts else np.zeros(0)
            frame["value"] = values[known]
        frame = frame.sort_values([KEY, TIME], kind="stable").reset_index(drop=True)
        count = {
            "read": int(len(frame)),
            "without_concept_or_source": dropped,
            "of_persons_not_read": int((~known).sum()),
        }
        info = self.concepts(spec, sorted(set(frame["concept"])), where, cols)
        info["events"] = info["item"].map(frame["concept"].value_counts()).fillna(0).astype(int)
        return frame, info, count

    def concepts(self, spec: _Domain, used: list[str], where: str, cols: set[str]) -> pd.DataFrame:
        """Per item: concept ID, most frequent source value, source concept and unit."""
        pre = spec.prefix
        unit = (
            ", unit_concept_id AS unit_concept, unit_source_value AS unit_source"
            if spec.unit and {"unit_concept_id", "unit_source_value"} <= cols
            else ", NULL AS unit_concept, NULL AS unit_source"
        )
        sql = (
            f"SELECT {pre}_concept_id AS concept, {pre}_source_value AS source, "
            f"{pre}_source_concept_id AS source_concept{unit}, count(*) AS n "
            f"FROM {self.table(spec.table)}{where} GROUP BY 1, 2, 3, 4, 5"
        )
        rows = pd.concat(
            [pd.DataFrame(b) for b in self.stream(sql, f"reading {spec.table}", spec.table)]
            or [
                pd.DataFrame(
                    columns=[
                        "concept",
                        "source",
                        "source_concept",
                        "unit_concept",
                        "unit_source",
                        "n",
                    ]
                )
            ],
            ignore_index=True,
        )
        concept = pd.to_numeric(rows["concept"], errors="coerce").fillna(0).astype(np.int64)
        src = rows["source"].map(lambda s: s.strip() if isinstance(s, str) and s.strip() else None)
        rows["item"] = np.where(concept != 0, concept.astype(str), src)
        rows = rows[rows["item"].isin(set(used))]
        out = []
        for item, g in rows.groupby("item", sort=True):
            g = g.sort_values("n", ascending=False, kind="stable")
            c = int(pd.to_numeric(g["concept"], errors="coerce").fillna(0).iloc[0])
            out.append(
                {
                    "table": spec.table,
                    "item": item,
                    "concept_id": c if c else None,
                    "source_value": _mode(g, "source"),
                    "source_concept_id": _mode_int(g, "source_concept"),
                    "unit_concept_id": _mode_int(g, "unit_concept"),
                    "unit": _mode(g, "unit_source"),
                }
            )
        return pd.DataFrame(
            out,
            columns=[
                "table",
                "item",
                "concept_id",
                "source_value",
                "source_concept_id",
                "unit_concept_id",
                "unit",
            ],
        )

    def describe(self, concepts: pd.DataFrame, vocab_schema: str) -> pd.DataFrame:
        """Add concept names, vocabularies and codes from the ``concept`` table."""
        ids = set()
        for c in ("concept_id", "source_concept_id"):
            ids |= {int(v) for v in concepts[c].dropna()}
        if not ids:
            return concepts
        sql = (
            "SELECT concept_id, concept_name, vocabulary_id, concept_code FROM "
            f"{self.db.qualify(vocab_schema, 'concept')} WHERE concept_id IN "
            f"({', '.join(str(i) for i in sorted(ids))})"
        )
        rows = pd.concat(
            [pd.DataFrame(b) for b in self.stream(sql, "reading concept", "concept")]
            or [
                pd.DataFrame(
                    columns=["concept_id", "concept_name", "vocabulary_id", "concept_code"]
                )
            ],
            ignore_index=True,
        )
        known = {int(r.concept_id): r for r in rows.itertuples(index=False)}
        out = concepts.copy()
        out["concept_name"] = [
            known[int(c)].concept_name if pd.notna(c) and int(c) in known else None
            for c in out["concept_id"]
        ]
        vocab, code = [], []
        for r in out.itertuples(index=False):
            sc = known.get(int(r.source_concept_id)) if pd.notna(r.source_concept_id) else None
            st = known.get(int(r.concept_id)) if pd.notna(r.concept_id) else None
            if sc is not None and r.source_value:
                vocab.append(str(sc.vocabulary_id))
                code.append(str(r.source_value))
            elif st is not None and (not r.source_value or r.source_value == st.concept_code):
                vocab.append(str(st.vocabulary_id))
                code.append(str(st.concept_code))
            else:
                vocab.append("")
                code.append(r.source_value or "")
        out["vocabulary"], out["code"] = vocab, code
        return out


def _mode(g: pd.DataFrame, col: str) -> str | None:
    vals = g[col].map(lambda s: s.strip() if isinstance(s, str) and s.strip() else None).dropna()
    return str(vals.iloc[0]) if len(vals) else None


def _mode_int(g: pd.DataFrame, col: str) -> int | None:
    vals = pd.to_numeric(g[col], errors="coerce").dropna()
    vals = vals[vals != 0]
    return int(vals.iloc[0]) if len(vals) else None
