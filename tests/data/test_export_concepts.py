"""OMOP concept IDs and domains carried by a code map into the exports (backward compatible)."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pyarrow.parquet as pq
import pytest

from healthsynth.data import export_dataset_as, load_timelines
from healthsynth.errors import DataFileError, ParameterError
from healthsynth.knowledge import CodeEntry, CodeMap, load_code_map


@pytest.fixture(scope="module")
def cohort():
    return load_timelines("nafld", max_patients=80, seed=4)


def _with(cm: CodeMap, **changes: dict) -> CodeMap:
    entries = [dataclasses.replace(e, **changes.get(e.item, {})) for e in cm.entries.values()]
    return CodeMap(entries, name="changed")


def test_entries_route_items_to_drug_procedure_and_observation_tables(cohort, tmp_path):
    # deliberately remapped items; the concept IDs only have to come through
    cm = _with(
        load_code_map("nafld"),
        diabetes={"domain": "drug", "concept_id": 1503297, "code": "metformin", "vocabulary": ""},
        htn={"domain": "procedure"},
        smoke={"domain": "observation", "concept_id": 4005823, "unit_concept_id": 0},
    )
    out = export_dataset_as(cohort, tmp_path / "cdm", fmt="omop", code_map=cm)
    names = {p.stem for p in out.iterdir()}
    ev = cohort.events()
    n = {i: int((ev["item"] == i).sum()) for i in ("diabetes", "htn", "smoke")}
    assert all(n.values())
    assert {"drug_exposure", "procedure_occurrence", "observation"} <= names
    drug = pq.read_table(out / "drug_exposure.parquet").to_pandas()
    assert len(drug) == n["diabetes"]
    assert (drug["drug_concept_id"] == 1503297).all()
    assert (drug["drug_source_value"] == "metformin").all()
    assert (drug["drug_exposure_end_date"] == drug["drug_exposure_start_date"]).all()
    proc = pq.read_table(out / "procedure_occurrence.parquet").to_pandas()
    assert len(proc) == n["htn"] and (proc["procedure_source_value"] == "I10").all()
    obs = pq.read_table(out / "observation.parquet").to_pandas()
    assert len(obs) == n["smoke"] and (obs["observation_concept_id"] == 4005823).all()
    assert obs["value_as_number"].notna().all()
    cond = pq.read_table(out / "condition_occurrence.parquet").to_pandas()
    assert not cond["condition_source_value"].isin(["I10", "E11.9", "metformin"]).any()


def test_without_concepts_the_export_is_as_before(cohort, tmp_path):
    out = export_dataset_as(cohort, tmp_path / "cdm", fmt="omop", code_map=load_code_map("nafld"))
    assert {p.stem for p in out.iterdir() if not p.name.startswith(".")} == {
        "person",
        "observation_period",
        "condition_occurrence",
        "measurement",
        "death",
    }
    meas = pq.read_table(out / "measurement.parquet").to_pandas()
    assert (meas["measurement_concept_id"] == 0).all()
    assert (meas["unit_concept_id"].isna() == meas["unit_source_value"].isna()).all()


def test_an_unknown_domain_is_refused(cohort, tmp_path):
    cm = _with(load_code_map("nafld"), htn={"domain": "visit"})
    with pytest.raises(ParameterError, match="names the domain 'visit'"):
        export_dataset_as(cohort, tmp_path / "cdm", fmt="omop", code_map=cm)


def test_code_map_frames_and_csv_concept_ids(tmp_path):
    cm = load_code_map("nafld")
    back = CodeMap.from_frame(cm.to_frame(), name="nafld")
    assert back.entries == cm.entries
    saved = CodeMap.from_dict(cm.to_dict())
    assert saved.get("labs", "chol").concept_id is None
    older = {
        "name": "old",
        "entries": [
            {
                k: v
                for k, v in e.items()
                if k
                in (
                    "table",
                    "item",
                    "vocabulary",
                    "code",
                    "description",
                    "unit",
                    "low",
                    "high",
                    "note",
                )
            }
            for e in cm.to_dict()["entries"]
        ],
    }
    assert CodeMap.from_dict(older).get("labs", "chol") == cm.get("labs", "chol")
    frame = cm.to_frame().assign(
        concept_id=pd.array([3027114] + [None] * (len(cm.entries) - 1), dtype="Int64"), events=1
    )
    first = CodeMap.from_frame(frame).entries[next(iter(cm.entries))]
    assert first.concept_id == 3027114 and isinstance(first.concept_id, int)
    with pytest.raises(ParameterError, match="lacks vocabulary"):
        CodeMap.from_frame(frame.drop(columns="vocabulary"))
    csv = tmp_path / "m.csv"
    csv.write_text(
        "table,item,vocabulary,code,unit,low,high,note,concept_id\n"
        "labs,chol,LOINC,2093-3,mg/dL,,,,3027114\n"
        "labs,hdl,LOINC,2085-9,mg/dL,,,,\n",
        encoding="utf-8",
    )
    m = load_code_map(csv)
    assert m.get("labs", "chol").concept_id == 3027114 and m.get("labs", "hdl").concept_id is None
    csv.write_text(
        "table,item,vocabulary,code,concept_id\nlabs,chol,LOINC,2093-3,12.5\n", encoding="utf-8"
    )
    with pytest.raises(DataFileError, match="line 2: concept_id '12.5' is not a concept ID"):
        load_code_map(csv)
    assert CodeEntry("t", "i", "LOINC", "x", "", None, None, None, "").domain is None
