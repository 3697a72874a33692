from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthsynth.data import read_table, write_table
from healthsynth.errors import DataError, DataFileError
from tests.helpers import real


def test_csv_and_parquet_round_trip(tmp_path):
    df = real("survival/colon", 300)
    for name in ("a.csv", "a.parquet"):
        write_table(df, tmp_path / name)
        back = read_table(tmp_path / name)
        pd.testing.assert_frame_equal(back, df, check_dtype=False, check_column_type=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "a.parquet"]  # no temp files


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"   \n\n", "is empty"),
        (b"a,b,c\n", "has a header but no rows"),
        (b"a,b,a\n1,2,3\n", "duplicate column names: a"),
        (b"a,,c\n1,2,3\n", "empty column name at position 2"),
        (b"name,age\nJos\xe9,40\n", r"is not valid utf-8 \(byte 0xe9 at offset 12\)"),
    ],
)
def test_bad_csv_files_get_one_sentence(tmp_path, content, message):
    p = tmp_path / "bad.csv"
    p.write_bytes(content)
    with pytest.raises(DataFileError, match=message) as e:
        read_table(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_missing_file_folder_and_suffix(tmp_path):
    with pytest.raises(DataFileError, match="does not exist"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(DataFileError, match="use a .csv or .parquet file"):
        read_table(tmp_path / "data.xlsx")
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(DataFileError, match="is a folder"):
        read_table(tmp_path / "dir.csv")
    (tmp_path / "x.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataFileError, match="not a readable Parquet file"):
        read_table(tmp_path / "x.parquet")


def test_latin1_file_reads_with_encoding(tmp_path):
    p = tmp_path / "l1.csv"
    p.write_bytes("name,age\nJosé,40\nAna,30\n".encode("latin-1"))
    assert read_table(p, encoding="latin-1")["name"].tolist() == ["José", "Ana"]


def test_failed_write_leaves_nothing(tmp_path):
    class Boom(pd.DataFrame):
        def to_csv(self, *a, **k):
            raise OSError("disk full")

    with pytest.raises(OSError):
        write_table(Boom({"a": [1]}), tmp_path / "out.csv")
    assert list(tmp_path.iterdir()) == []


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=400))
def test_fuzz_csv_reader_never_crashes_uncontrolled(tmp_path, blob):
    p = tmp_path / "fuzz.csv"
    p.write_bytes(blob)
    try:
        df = read_table(p)
    except DataError as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert len(df) > 0 and not pd.Index(df.columns).duplicated().any()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.lists(
            st.sampled_from(["1", "2.5", "", "x", "NA", "é", '"', ",", "-3"]),
            min_size=1,
            max_size=4,
        ),
        min_size=1,
        max_size=6,
    )
)
def test_fuzz_csv_like_text_then_infer(tmp_path, rows):
    from healthsynth.data import infer_schema

    p = tmp_path / "fuzz2.csv"
    p.write_text("\n".join(",".join(r) for r in rows), encoding="utf-8")
    try:
        infer_schema(read_table(p))
    except DataError as e:
        assert "\n" not in str(e)


def test_atomic_writes_get_ordinary_permissions(tmp_path):
    import os
    import stat

    from healthsynth.data._io import current_umask

    path = write_table(real("MASS/Pima.tr"), tmp_path / "t.csv")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~current_umask()


# -- dates ------------------------------------------------------------------------------------
JASA_DATES = ["birth.dt", "accept.dt", "tx.date", "fu.date"]


def test_iso_date_columns_of_jasa_are_read_as_datetimes(tmp_path):
    from healthsynth.data import infer_schema

    df = real("survival/jasa")  # dates as 'YYYY-MM-DD' text, tx.date missing for 34 patients
    df.to_csv(tmp_path / "jasa.csv", index=False)
    back = read_table(tmp_path / "jasa.csv")
    for c in JASA_DATES:
        assert pd.api.types.is_datetime64_any_dtype(back[c])
        assert back[c].isna().sum() == df[c].isna().sum()
    assert back["tx.date"].isna().sum() == 34
    assert back.loc[0, "birth.dt"] == pd.Timestamp("1937-01-10")
    schema = infer_schema(back)
    assert {c: (schema[c].kind, schema[c].resolution) for c in JASA_DATES} == {
        c: ("datetime", "day") for c in JASA_DATES
    }
    assert schema["age"].kind == "numeric" and schema["fustat"].kind == "boolean"
    # the same frame from Parquet, where R's Date type arrives as datetime.date objects
    as_dates = df.assign(**{c: pd.to_datetime(df[c]).dt.date for c in JASA_DATES})
    as_dates.to_parquet(tmp_path / "jasa.parquet")
    pd.testing.assert_frame_equal(read_table(tmp_path / "jasa.parquet"), back)


def test_date_times_written_by_write_table_read_back_the_same(tmp_path):
    df = real("survival/jasa")
    accept = pd.to_datetime(df["accept.dt"])
    df["accept.dt"] = accept + pd.to_timedelta(df["futime"] * 997, unit="s")  # to the second
    df["fu.date"] = pd.to_datetime(df["fu.date"])
    df["tx.date"] = pd.to_datetime(df["tx.date"]) + pd.Timedelta(milliseconds=250)
    write_table(df, tmp_path / "t.csv")
    back = read_table(tmp_path / "t.csv")
    for c in ("accept.dt", "fu.date", "tx.date"):
        pd.testing.assert_series_equal(back[c], df[c], check_dtype=False)
    # ISO dates and date-times mixed in one column, with 'T' or a space, are ISO all the same
    mixed = ["1968-01-02", "1968-01-03T10:15", "1968-01-04 23:59:59", None, "1968-01-05"]
    p = tmp_path / "mixed.csv"
    pd.DataFrame({"when": mixed, "futime": [1, 2, 3, 4, 5]}).to_csv(p, index=False)
    assert read_table(p)["when"].tolist()[:3] == [
        pd.Timestamp("1968-01-02"),
        pd.Timestamp("1968-01-03 10:15"),
        pd.Timestamp("1968-01-04 23:59:59"),
    ]


def test_dates_in_other_forms_stay_text_with_one_warning(tmp_path):
    from healthsynth.errors import HealthsynthWarning

    df = real("survival/jasa")
    df["birth.dt"] = pd.to_datetime(df["birth.dt"]).dt.strftime("%m/%d/%Y")  # 01/10/1937
    df.loc[5, "fu.date"] = "1968-02-30"  # not a day of the calendar
    df.to_csv(tmp_path / "us.csv", index=False)
    with pytest.warns(HealthsynthWarning) as caught:
        back = read_table(tmp_path / "us.csv")
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2 and all("\n" not in m and "us.csv" in m for m in messages)
    assert "column 'birth.dt'" in messages[0] and "'01/10/1937'" in messages[0]
    assert "YYYY-MM-DD" in messages[0] and "read as text" in messages[0]
    assert "column 'fu.date'" in messages[1] and "'1968-02-30' is not a valid date" in messages[1]
    assert back["birth.dt"].dtype == object and back["birth.dt"][0] == "01/10/1937"
    assert back["fu.date"].dtype == object
    assert pd.api.types.is_datetime64_any_dtype(back["accept.dt"])


# -- separators -------------------------------------------------------------------------------
def _birthwt_with_decimals():
    df = real("MASS/birthwt")
    df["bwt_kg"] = df["bwt"] / 1000  # 2.523, and float noise such as 54.99999999999999 below
    df["lwt_kg"] = df["lwt"] * 0.45359237
    return df


def test_semicolon_tab_and_excel_files_read_the_same_frame_as_the_comma_file(tmp_path):
    df = _birthwt_with_decimals()
    write_table(df, tmp_path / "comma.csv")
    expected = read_table(tmp_path / "comma.csv")
    df.to_csv(tmp_path / "semicolon.csv", sep=";", index=False)
    df.to_csv(tmp_path / "tab.csv", sep="\t", index=False)
    # what a spreadsheet in a decimal-comma locale saves: BOM, ';', decimal commas, CRLF
    excel = df.to_csv(sep=";", decimal=",", index=False, lineterminator="\r\n")
    assert "2,523" in excel
    (tmp_path / "excel.csv").write_bytes(excel.encode("utf-8-sig"))
    for name in ("semicolon.csv", "tab.csv", "excel.csv"):
        pd.testing.assert_frame_equal(read_table(tmp_path / name), expected, obj=name)


def test_decimal_commas_only_where_a_whole_column_is_numbers(tmp_path):
    df = real("MASS/birthwt", 40)
    df["note"] = [f"{v},5 g" if i % 2 else f"{v},5" for i, v in enumerate(df["bwt"])]
    df["kg"] = (df["bwt"] / 1000).map(lambda v: f"{v}".replace(".", ","))
    p = tmp_path / "semi.csv"
    df.to_csv(p, sep=";", index=False)
    back = read_table(p)
    assert back["kg"].tolist() == (df["bwt"] / 1000).tolist()
    assert back["note"].dtype == object and back["note"][1] == f"{df['bwt'][1]},5 g"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"low;age,lwt\n0;19,182\n", r"holds both a semicolon and a comma .* \(line 1\)"),
        (b"low\tage;lwt\n0\t19;182\n", r"holds both a tab and a semicolon .* \(line 1\)"),
        (
            b"low;age;lwt\n0;19;182\n1;33;155;\n",
            r"has 4 fields on line 3 but 3 column names .* remove the trailing semicolon",
        ),
        (b"low;age;lwt\n0;19\n", r"has 2 fields on line 2 but 3 column names"),
        (b"low;age;\n0;19;1\n", r"position 3 \(the header line ends with a semicolon\)"),
        (b"low;age;lwt\n", "has a header but no rows"),
    ],
)
def test_bad_semicolon_files_get_one_sentence(tmp_path, content, message):
    p = tmp_path / "bad.csv"
    p.write_bytes(content)
    with pytest.raises(DataFileError, match=message) as e:
        read_table(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_quoted_names_may_hold_the_other_separator(tmp_path):
    p = tmp_path / "q.csv"
    p.write_text('"weight; kg",age\n70.5,40\n80.25,51\n', encoding="utf-8")
    assert read_table(p).columns.tolist() == ["weight; kg", "age"]
    p.write_text('"weight, kg";age\n70,5;40\n80,25;51\n', encoding="utf-8")
    back = read_table(p)
    assert back.columns.tolist() == ["weight, kg", "age"] and back["weight, kg"][1] == 80.25


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sampled_from([",", ";", "\t"]),
    st.lists(
        st.lists(
            st.sampled_from(
                ["1", "2,5", "2.5", "", "x", "1968-01-02", "01/02/1968", '"', ";", ",", "\t"]
            ),
            min_size=1,
            max_size=4,
        ),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from(["\n", "\r\n"]),
)
@pytest.mark.filterwarnings("ignore::healthsynth.errors.HealthsynthWarning")
def test_fuzz_mixed_separators_never_crash_uncontrolled(tmp_path, sep, rows, newline):
    from healthsynth.data import infer_schema

    p = tmp_path / "fuzz3.csv"
    p.write_text(newline.join(sep.join(r) for r in rows), encoding="utf-8")
    try:
        infer_schema(read_table(p))
    except DataError as e:
        assert str(e) and "\n" not in str(e)
