"""MEDS (Medical Event Data Standard) from a prepared dataset, with the ``meds`` package's schemas.

Layout (MEDS 0.4)::

    FOLDER/
      data/train/0.parquet            every event: subject_id, time, code, numeric_value, text_value
      metadata/codes.parquet          one row per code: code, description, parent_codes
      metadata/dataset.json           dataset name, ETL name and version, MEDS version, created_at
      metadata/subject_splits.parquet every subject in split "train"

Codes: ``ICD10CM/E11.9`` and ``LOINC/2093-3`` for mapped items, ``TABLE//item`` for items
without a standard code (the double slash marks a dataset-local name), ``GENDER/female``,
``patients//column`` (numbers) or ``patients//column//value`` (other values) for the other
columns of the patients table (``patients`` being that table's name), ``MEDS_BIRTH`` at the
birth date estimated from the age at the index date, and ``MEDS_DEATH`` at the end of
follow-up. Sex and the patients-table columns are static (null time). Rows are grouped by
subject and sorted by time, static rows first.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from healthsynth.data._prepared import Prepared

__all__ = ["write_meds"]


def write_meds(prepared: Prepared, folder: Path, *, meds: ModuleType, name: str) -> None:
    """Write a MEDS dataset into ``folder``; ``meds`` is the imported ``meds`` package."""
    p, ev, at = prepared.patients, prepared.events, prepared.attributes
    pt = prepared.patients_table
    no_time = pd.Series(pd.NaT, index=p.index, dtype="datetime64[us]")

    sex = p[p["sex"].notna()]
    parts = [
        _rows(sex["person_id"], no_time[sex.index], "GENDER/" + sex["sex"].astype(str), 0),
        _rows(p["person_id"], p["birth"], "MEDS_BIRTH", 1, keep=p["birth"].notna()),
    ]
    if len(at):
        codes = np.where(
            at["text"].isna(),
            pt + "//" + at["column"],
            pt + "//" + at["column"] + "//" + at["text"].fillna("").astype(str),
        )
        parts.append(
            _rows(
                at["person_id"],
                pd.Series(pd.NaT, index=at.index, dtype="datetime64[us]"),
                pd.Series(codes, index=at.index),
                0,
                value=at["number"],
            )
        )
    vocab_code = ev["vocabulary"].astype(str) + "/" + ev["code"].astype(str)
    local = ev["table"].astype(str) + "//" + ev["item"].astype(str)
    ev_codes = vocab_code.where(ev["code"].notna(), local)
    parts.append(_rows(ev["person_id"], ev["when"], ev_codes, 2, value=ev["value"]))
    dead = p[p["died"]]
    parts.append(_rows(dead["person_id"], dead["death_date"], "MEDS_DEATH", 3))

    data = pd.concat(parts, ignore_index=True)
    data = data.sort_values(
        ["subject_id", "time", "_order"], kind="stable", na_position="first"
    ).drop(columns="_order")
    table = pa.Table.from_pandas(data.reset_index(drop=True), preserve_index=False)
    table = table.replace_schema_metadata(None)
    table = table.append_column("text_value", pa.nulls(len(data), pa.large_string()))
    table = meds.DataSchema.align(table)
    shard = folder / meds.data_subdirectory / "train" / "0.parquet"
    shard.parent.mkdir(parents=True)
    pq.write_table(table, shard)

    descriptions = _descriptions(prepared, data["code"])
    codes_table = meds.CodeMetadataSchema.align(
        pa.table(
            {
                "code": pa.array(list(descriptions), pa.string()),
                "description": pa.array(list(descriptions.values()), pa.string()),
                "parent_codes": pa.nulls(len(descriptions), pa.list_(pa.string())),
            }
        )
    )
    (folder / "metadata").mkdir()
    pq.write_table(codes_table, folder / meds.code_metadata_filepath)

    splits = meds.SubjectSplitSchema.align(
        pa.table(
            {
                "subject_id": pa.array(p["person_id"].to_numpy(np.int64)),
                "split": pa.array([meds.train_split] * len(p), pa.string()),
            }
        )
    )
    pq.write_table(splits, folder / meds.subject_splits_filepath)

    meta = {
        "dataset_name": name,
        "etl_name": "healthsynth",
        "etl_version": _version(),
        "meds_version": str(meds.__version__),
        "created_at": datetime.now(timezone.utc).isoformat(),
    }
    meds.DatasetMetadataSchema.validate(meta)
    (folder / meds.dataset_metadata_filepath).write_text(
        json.dumps(meta, indent=2) + "\n", encoding="utf-8"
    )


def _rows(
    subject: pd.Series,
    time: pd.Series,
    code: pd.Series | str,
    order: int,
    *,
    value: pd.Series | None = None,
    keep: pd.Series | None = None,
) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "subject_id": subject.to_numpy(np.int64),
            "time": time.to_numpy("datetime64[us]"),
            "code": code if isinstance(code, str) else code.to_numpy(object),
            "numeric_value": (np.nan if value is None else value.to_numpy(float)),
            "_order": order,
        }
    )
    out["numeric_value"] = out["numeric_value"].astype(np.float32)
    if keep is not None:
        out = out[keep.to_numpy(bool)]
    return out


def _descriptions(prepared: Prepared, codes: pd.Series) -> dict[str, str]:
    """A description for every code in the data, in first-seen order."""
    ev, pt = prepared.events, prepared.patients_table
    known: dict[str, str] = {
        "MEDS_BIRTH": "Birth (date estimated from the age at the index date)",
        "MEDS_DEATH": "Death (at the end of follow-up)",
    }
    mapped = ev[ev["code"].notna()].drop_duplicates(["vocabulary", "code"])
    for v, c, d in zip(mapped["vocabulary"], mapped["code"], mapped["description"], strict=True):
        known.setdefault(f"{v}/{c}", str(d) if d is not None else f"{v} code {c}")
    local = ev[ev["code"].isna()].drop_duplicates(["table", "item"])
    for t, i in zip(local["table"], local["item"], strict=True):
        known.setdefault(f"{t}//{i}", f"'{i}' in table '{t}' (no standard code)")
    out: dict[str, str] = {}
    for code in pd.unique(codes):
        if code in known:
            out[code] = known[code]
        elif code.startswith("GENDER/"):
            out[code] = f"Sex: {code.split('/', 1)[1]}"
        elif code.startswith(f"{pt}//"):
            out[code] = f"Column '{code[len(pt) + 2 :]}' of table '{pt}' (static)"
        else:
            out[code] = code
    return out


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("healthsynth")
    except PackageNotFoundError:
        return "unknown"
