"""Reading MEDS datasets: the real NAFLD cohort exported to MEDS and read back, and bad folders."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from healthsynth.data import export_dataset_as, load_timelines, read_meds
from healthsynth.errors import DataError, DataFileError
from healthsynth.knowledge import CodeMap, load_code_map

meds = pytest.importorskip("meds")


@pytest.fixture(scope="module")
def cohort():
    return load_timelines("nafld", max_patients=200, seed=0)


@pytest.fixture(scope="module")
def folder(cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("meds") / "nafld"
    return export_dataset_as(cohort, out, fmt="meds", code_map=load_code_map("nafld"))


def test_meds_read_equals_the_exported_cohort(folder, cohort):
    got = read_meds(folder, index_date="2020-01-01")
    ds = got.dataset
    assert ds.n_patients == cohort.n_patients
    assert set(ds.event_tables) == {"events", "measurements"}
    cm = load_code_map("nafld")
    back = {f"{e.vocabulary}/{e.code}": e.item for e in cm.entries.values()}
    ev = ds.events()
    ev["item"] = [back.get(i, i.split("//")[-1]) for i in ev["item"]]
    cols = ["id", "days", "item", "value"]
    a = ev.rename(columns={"subject_id": "id"})[cols].sort_values(cols).reset_index(drop=True)
    b = cohort.events()[cols].sort_values(cols).reset_index(drop=True)
    assert len(a) == len(b)
    assert (a["id"].to_numpy() == b["id"].to_numpy()).all()
    assert (a["days"].to_numpy() == b["days"].to_numpy()).all()
    assert (a["item"].to_numpy() == b["item"].to_numpy()).all()
    # MEDS keeps numeric values as float32
    np.testing.assert_allclose(a["value"].to_numpy(float), b["value"].to_numpy(float), rtol=1e-6)
    m = ds.patient_table.merge(cohort.patient_table, left_on="subject_id", right_on="id")
    assert (m["sex_x"] == m["sex_y"]).all()
    assert (m["age_x"] == m["age_y"]).all()
    assert (m["died"] == m["status"]).all()
    # MEDS has no end of follow-up: it is the death, else the last event
    dead = m["died"] == 1
    assert (m.loc[dead, "follow_up_days"] == m.loc[dead, "futime"]).all()
    np.testing.assert_allclose(m["bmi_x"], m["bmi_y"], rtol=1e-6)
    assert got.record["subjects_read"] == cohort.n_patients


def test_codes_become_a_code_map_with_descriptions(folder):
    got = read_meds(folder)
    cm = CodeMap.from_frame(got.codes, name="meds")
    e = cm.get("events", "ICD10CM/E11.9")
    assert (e.vocabulary, e.code) == ("ICD10CM", "E11.9")
    assert e.description == "Type 2 diabetes mellitus without complications"
    local = cm.get("measurements", "labs//fib4")
    assert local.vocabulary == "" and "fib4" in local.description


def test_default_index_is_the_first_event(folder):
    got = read_meds(folder, max_patients=50, seed=2)
    ds = got.dataset
    assert ds.n_patients <= 50
    first = ds.events().groupby("subject_id")["days"].min()
    assert (first == 0).all()


def test_bad_meds_folders(tmp_path, folder):
    with pytest.raises(DataFileError, match="does not exist"):
        read_meds(tmp_path / "nope")
    (tmp_path / "empty" / "data").mkdir(parents=True)
    with pytest.raises(DataFileError, match="has no data shards"):
        read_meds(tmp_path / "empty")
    bad = tmp_path / "bad" / "data"
    bad.mkdir(parents=True)
    pq.write_table(pa.table({"patient": [1, 2], "code": ["a", "b"]}), bad / "0.parquet")
    with pytest.raises(DataFileError, match=r"lacks the column\(s\) subject_id, time"):
        read_meds(tmp_path / "bad")
    (bad / "0.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataFileError, match="not a readable Parquet file"):
        read_meds(tmp_path / "bad")
    one = tmp_path / "one" / "data"
    one.mkdir(parents=True)
    t = pq.read_table(folder / "data" / "train" / "0.parquet")
    first = t.column("subject_id")[0].as_py()
    pq.write_table(t.filter(pa.compute.equal(t.column("subject_id"), first)), one / "0.parquet")
    with pytest.raises(DataError, match="needs at least two subjects with events"):
        read_meds(tmp_path / "one")
