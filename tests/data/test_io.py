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
