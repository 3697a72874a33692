"""Code maps from a dataset's item names to ICD-10-CM and LOINC codes."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthsynth.data import load_timelines
from healthsynth.errors import DataFileError, ParameterError
from healthsynth.knowledge import PACKAGED_CODE_MAPS, CodeEntry, CodeMap, load_code_map
from healthsynth.knowledge._icd10cm import DEFAULT_MATERNAL_AGE, _cm

cm = _cm()

HEADER = "table,item,vocabulary,code,unit,low,high,note\n"


def write_map(tmp_path, *rows: str):
    path = tmp_path / "custom.csv"
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", PACKAGED_CODE_MAPS)
def test_packaged_maps_load(name):
    code_map = load_code_map(name)
    assert code_map.name == name and len(code_map.entries) >= 5
    for e in code_map.entries.values():
        assert e.vocabulary in ("ICD10CM", "LOINC")
        if e.vocabulary == "ICD10CM":
            assert cm.is_valid_item(e.code)
            assert e.description == cm.get_description(e.code)  # from the code system itself
        else:
            assert e.description and e.unit
        if e.low is not None and e.high is not None:
            assert e.low <= e.high


def test_nafld_map_entries_and_lookup():
    code_map = load_code_map("nafld")
    diabetes = code_map.get("events", "diabetes")
    assert (diabetes.vocabulary, diabetes.code) == ("ICD10CM", "E11.9")
    assert diabetes.description == "Type 2 diabetes mellitus without complications"
    chol = code_map.get("labs", "chol")
    assert (chol.vocabulary, chol.code, chol.unit) == ("LOINC", "2093-3", "mg/dL")
    assert code_map.get("labs", "fib4") is None
    assert code_map.get("events", "chol") is None  # keyed by table and item
    back = CodeMap.from_dict(code_map.to_dict())
    assert back.entries == code_map.entries and back.name == "nafld"
    assert len(code_map.to_frame()) == len(code_map.entries)


def test_unmapped_lists_nafld_fib4():
    ds = load_timelines("nafld", max_patients=400, seed=0)
    events = ds.events()
    unmapped = load_code_map("nafld").unmapped(events)
    assert list(unmapped.columns) == ["table", "item", "events"]
    assert unmapped[["table", "item"]].values.tolist() == [["labs", "fib4"]]
    assert unmapped["events"].iloc[0] == int((events["item"] == "fib4").sum()) > 0
    pbc = load_timelines("pbcseq", max_patients=60, seed=0)
    missing = set(load_code_map("pbcseq").unmapped(pbc.events())["item"])
    assert {"ascites", "stage"} <= missing and "bili" not in missing


def test_custom_map_loads(tmp_path):
    path = write_map(
        tmp_path,
        "events,birth,ICD10CM,O80,,,,delivery",
        "events,bph,icd10cm, N40.0 ,,,,prostate",
        "labs,hb,LOINC,718-7,g/dL,3,25,Hemoglobin [Mass/volume] in Blood",
    )
    code_map = load_code_map(path)
    assert code_map.name == "custom"
    bph = code_map.get("events", "bph")
    assert (bph.vocabulary, bph.code) == ("ICD10CM", "N40.0")
    hb = code_map.get("labs", "hb")
    assert (hb.low, hb.high, hb.unit) == (3.0, 25.0, "g/dL")
    assert hb.description == "Hemoglobin [Mass/volume] in Blood"


def test_semicolon_map_with_decimal_commas_loads(tmp_path):
    # as spreadsheets in comma-decimal locales save it; read as read_table reads data
    path = tmp_path / "semi.csv"
    path.write_text(
        "table;item;vocabulary;code;unit;low;high;note\n"
        "labs;alb;LOINC;1751-7;g/dL;1,5;6,5;Albumin, serum\n"
        "events;bph;ICD10CM;N40.0;;;;prostate\n"
    )
    code_map = load_code_map(path)
    alb = code_map.get("labs", "alb")
    assert (alb.low, alb.high, alb.note) == (1.5, 6.5, "Albumin, serum")
    assert code_map.get("events", "bph").code == "N40.0"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("events,x,SNOMED,44054006,,,,", r"line 3: vocabulary 'SNOMED' is not one of ICD10CM"),
        ("events,x,ICD10CM,E11.99X,,,,", r"line 3: 'E11.99X' is not an ICD-10-CM code"),
        ("labs,x,LOINC,2093-3,mg/dL,300,40,", r"line 3: low 300.0 is above high 40.0"),
        ("labs,x,LOINC,2093-3,mg/dL,low,40,", r"line 3: low 'low' is not a number"),
        ("labs,x,LOINC,2093-3,mg/dL,1,inf,", r"line 3: high 'inf' is not a finite number"),
        ("events,htn,ICD10CM,I10,,,,", r"lists \(events, htn\) twice"),
    ],
)
def test_bad_custom_maps_name_the_line(tmp_path, row, message):
    path = write_map(tmp_path, "events,htn,ICD10CM,I10,,,,ok", row)
    with pytest.raises(DataFileError, match=message) as info:
        load_code_map(path)
    assert str(path) in str(info.value)


def test_bad_map_files(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("table,item,code\nevents,htn,I10\n")
    with pytest.raises(DataFileError, match="lacks the column\\(s\\) vocabulary"):
        load_code_map(path)
    with pytest.raises(ParameterError, match="neither a packaged mapping"):
        load_code_map(tmp_path / "absent.csv")
    with pytest.raises(ParameterError, match="neither a packaged mapping"):
        load_code_map("nafld2")


def entry(code: str, vocabulary: str = "ICD10CM") -> CodeEntry:
    return CodeEntry("events", code, vocabulary, code, "", None, None, None, "")


def test_sex_specific_codes():
    assert entry("O80").sexes() == ("female",)  # delivery
    assert entry("N40.0").sexes() == ("male",)  # benign prostatic hyperplasia
    assert entry("E11.9").sexes() == ("female", "male")
    assert entry("2093-3", "LOINC").sexes() == ("female", "male")


def test_age_specific_codes():
    assert entry("O80").ages() == DEFAULT_MATERNAL_AGE  # the maternal band
    assert entry("E11.9").ages() == (0.0, math.inf)
    assert entry("2093-3", "LOINC").ages() == (0.0, math.inf)


_HEADER = "table,item,vocabulary,code,unit,low,high,note\n"
_CELLS = st.sampled_from(
    ["labs", "hdl", "ICD10CM", "LOINC", "icd9", "E11.9", "O80", "XX.9", "2085-9", "", "5",
     "-1", "1e999", "nan", "abc", '"', "a,b", "\u00e9", " "]
)  # fmt: skip


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(st.lists(_CELLS, min_size=0, max_size=9), max_size=4),
    header=st.booleans(),
    raw=st.binary(max_size=40),
)
def test_fuzzed_map_files_raise_only_our_errors(tmp_path, rows, header, raw):
    text = (_HEADER if header else "") + "".join(",".join(r) + "\n" for r in rows)
    for i, content in enumerate((text.encode(), raw)):
        path = tmp_path / f"fuzz{i}.csv"
        path.write_bytes(content)
        try:
            cmap = load_code_map(path)
        except (DataFileError, ParameterError) as e:
            assert str(e) and "\n" not in str(e)
        else:
            assert all(isinstance(e.code, str) for e in cmap.entries.values())
