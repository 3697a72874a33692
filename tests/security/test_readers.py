"""No silent corruption when reading: a row with a field too many or too few is one sentence.

pandas reads a CSV whose rows all end in a stray comma with its first column as the index, so
every column shifts one to the left and the target becomes all missing; a short row is filled
with missing values. The readers here say where and what to do instead, and a target that
cannot teach anything draws a warning.
"""

from __future__ import annotations

import io
import tempfile
import warnings
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from healthsynth.data import Dataset, infer_schema, read_table
from healthsynth.errors import DataFileError, HealthsynthWarning
from healthsynth.generators.prompted_llm._parse import parse_reply
from healthsynth.knowledge import load_code_map
from tests.helpers import real


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


@pytest.fixture(scope="module")
def pima():
    return real("MASS/Pima.tr")


def trailing_commas(df: pd.DataFrame, rows: slice | None = None) -> str:
    """``df`` as CSV text with a comma after the last field of the data rows in ``rows``."""
    lines = df.to_csv(index=False).splitlines()
    chosen = set(range(1, len(lines))[rows or slice(None)])
    return "\n".join(ln + "," if i in chosen else ln for i, ln in enumerate(lines)) + "\n"


# -- the case and its neighbours --------------------------------------------------------
def test_every_row_ending_in_a_comma_is_refused_not_shifted(pima, tmp_path):
    path = write(tmp_path / "pima.csv", trailing_commas(pima))
    with pytest.raises(DataFileError) as e:
        read_table(path)
    message = str(e.value)
    assert message.startswith(f"data file {path} has 9 fields on line 2 (and 199 more lines")
    assert "but 8 column names in its header" in message and "trailing comma" in message
    assert "\n" not in message


def test_one_row_with_an_extra_field_names_its_line(pima, tmp_path):
    path = write(tmp_path / "p.csv", trailing_commas(pima, slice(40, 41)))
    with pytest.raises(DataFileError, match=r"has 9 fields on line 42 but 8 column names"):
        read_table(path)


def test_a_short_row_is_refused(pima, tmp_path):
    lines = pima.to_csv(index=False).splitlines()
    lines[7] = lines[7].rsplit(",", 1)[0]
    path = write(tmp_path / "p.csv", "\n".join(lines))
    with pytest.raises(DataFileError, match=r"has 7 fields on line 8 but 8 column names.*add the"):
        read_table(path)


def test_line_numbers_count_quoted_line_breaks(tmp_path):
    path = write(tmp_path / "q.csv", 'a,b\n"two\nlines",1\n"x",2,\n')
    with pytest.raises(DataFileError, match="on line 4 but 2 column names"):
        read_table(path)


def test_a_header_ending_in_a_comma_says_so(tmp_path):
    path = write(tmp_path / "h.csv", "a,b,\n1,2,\n")
    with pytest.raises(DataFileError, match=r"position 3 \(the header line ends with a comma\)"):
        read_table(path)


@pytest.mark.parametrize(
    "text",
    [
        "\ufeffa,b\r\n1,x\r\n2,y\r\n",  # BOM and Windows line ends
        "a,b\r1,x\r2,y",  # old Mac line ends, no final line end
        "a,b\n1,x\n\n   \n2,y",  # blank lines are skipped
        'a,b\n1,"x"\n2, "y"\n',  # quoted, with a space before the quote
    ],
)
def test_well_formed_neighbours_still_read(text, tmp_path):
    df = read_table(write(tmp_path / "ok.csv", text))
    assert list(df.columns) == ["a", "b"] and df["a"].tolist() == [1, 2]
    assert df["b"].tolist() == ["x", "y"] and isinstance(df.index, pd.RangeIndex)


def test_a_quoted_comma_is_one_field(tmp_path):
    df = read_table(write(tmp_path / "c.csv", 'a,b\n1,"x, y"\n2,z\n'))
    assert df["b"].tolist() == ["x, y", "z"]


def test_dataset_read_refuses_a_shifted_table(tmp_path):
    ds = real("survival/nafld1", 30)
    write(tmp_path / "patients.csv", ds.to_csv(index=False))
    events = pd.DataFrame({"id": ds["id"], "days": 1, "event": "visit"})
    bad = write(tmp_path / "events.csv", trailing_commas(events))
    with pytest.raises(DataFileError, match=f"data file {bad} has 4 fields on line 2"):
        Dataset.read({"patients": tmp_path / "patients.csv", "events": bad}, key="id", time="days")


def test_code_mapping_with_trailing_commas_is_refused(tmp_path):
    text = "table,item,vocabulary,code\nevents,htn,ICD10CM,I10,\n"
    path = write(tmp_path / "map.csv", text)
    with pytest.raises(DataFileError, match=r"code mapping .* 5 fields on line 2 but 4 column"):
        load_code_map(path)


def test_llm_reply_rows_ending_in_a_comma_keep_their_columns():
    parsed = parse_reply("age,sex,type\n34,m,Yes,\n50,f,No,\n", fmt="csv", truncated=False)
    assert parsed.rows == [
        {"age": "34", "sex": "m", "type": "Yes"},
        {"age": "50", "sex": "f", "type": "No"},
    ]
    # a row with a value too many cannot be lined up, so it is dropped, never shifted
    parsed = parse_reply("age,sex,type\n34,m,Yes,1\n50,f,No\n", fmt="csv", truncated=False)
    assert parsed.rows == [{"age": "50", "sex": "f", "type": "No"}]


def test_cli_fit_on_a_shifted_file_is_one_line_and_exit_2(pima, tmp_path):
    from healthsynth.cli import app

    path = write(tmp_path / "pima.csv", trailing_commas(pima))
    args = ["fit", str(path), "--target", "type", "--out", str(tmp_path / "m")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "has 9 fields on line 2" in text and "Traceback" not in result.output
    assert not (tmp_path / "m").exists()


# -- the target --------------------------------------------------------------------------------
def test_one_class_target_warns(pima):
    one = pima[pima["type"] == "No"]
    with pytest.warns(HealthsynthWarning, match=r"column 'type' in .* one value only \('No'\)"):
        infer_schema(one, target="type")


def test_almost_all_missing_target_warns(pima):
    df = pima.copy()
    df.loc[df.index[10:], "type"] = None
    with pytest.warns(HealthsynthWarning, match=r"'type' in the data is 95% missing \(a value"):
        infer_schema(df, target="type")
    df["type"] = None
    with pytest.warns(HealthsynthWarning, match=r"has no values \(all 200 rows are missing\)"):
        infer_schema(df, target="type")


def test_a_healthy_target_draws_no_warning(pima):
    with warnings.catch_warnings():
        warnings.simplefilter("error", HealthsynthWarning)
        infer_schema(pima, target="type")
        infer_schema(pima, target="bmi")


# -- fuzzing -------------------------------------------------------------------------------------
cell = st.text(alphabet=st.sampled_from(list('ab1 ,"\n\r.-')), max_size=6)
names = st.lists(
    st.text(alphabet="abcdefgh", min_size=1, max_size=4), min_size=1, max_size=5, unique=True
)


@st.composite
def tables(draw):
    header = draw(names)
    n_rows = draw(st.integers(1, 6))
    # the first cell of each row starts with a letter, so no row is blank or whitespace only
    rows = [
        [draw(st.sampled_from("ab")) + draw(cell)] + [draw(cell) for _ in header[1:]]
        for _ in range(n_rows)
    ]
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    quote_all = draw(st.booleans())
    return header, rows, ending, quote_all


def quoted(field: str, quote_all: bool) -> str:
    """``field`` as RFC 4180 writes it (quoted when it holds a comma, quote or line break)."""
    if quote_all or any(c in field for c in ',"\r\n'):
        return '"' + field.replace('"', '""') + '"'
    return field


def to_text(header, rows, ending, quote_all=False, *, bom=False, final_ending=True):
    """The CSV text and the line each data row starts on (counting quoted line breaks)."""
    lines = [",".join(quoted(f, quote_all) for f in r) for r in [header, *rows]]
    starts = []
    text = lines[0] + ending
    for line in lines[1:]:
        starts.append(len(io.StringIO(text, newline="").readlines()) + 1)
        text += line + ending
    if not final_ending:
        text = text[: -len(ending)]
    return ("\ufeff" if bom else "") + text, starts


def read_text(text: str) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as d:
        return read_table(write(Path(d) / "t.csv", text))


@settings(max_examples=200, deadline=None)
@given(tables(), st.booleans(), st.booleans())
def test_fuzz_well_formed_files_keep_their_shape(table, bom, final_ending):
    header, rows, ending, quote_all = table
    text, _ = to_text(header, rows, ending, quote_all, bom=bom, final_ending=final_ending)
    df = read_text(text)
    assert list(df.columns) == header
    assert df.shape == (len(rows), len(header))
    assert isinstance(df.index, pd.RangeIndex)


@settings(max_examples=200, deadline=None)
@given(tables(), st.data())
def test_fuzz_a_row_of_another_width_is_always_refused_at_its_line(table, data):
    header, rows, ending, quote_all = table
    bad = data.draw(st.lists(st.integers(0, len(rows) - 1), min_size=1, unique=True))
    change = data.draw(st.sampled_from(["comma", "extra", "short"]))
    if change == "short" and len(header) == 1:
        change = "comma"
    for i in bad:
        if change == "comma":
            rows[i] = [*rows[i], ""]
        elif change == "extra":
            rows[i] = [*rows[i], data.draw(cell)]
        else:
            rows[i] = rows[i][:-1]
    text, starts = to_text(header, rows, ending, quote_all)
    first = min(bad)
    with pytest.raises(DataFileError) as e:
        read_text(text)
    message = str(e.value)
    assert f"has {len(rows[first])} field" in message, message
    assert f"on line {starts[first]}" in message and f"but {len(header)} column names" in message
    assert "\n" not in message
