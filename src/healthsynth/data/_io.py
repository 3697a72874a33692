"""Reading and writing tables (CSV, Parquet) with clear errors and atomic writes."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pandas as pd

from healthsynth.data._outputs import atomic_folder, atomic_path, current_umask
from healthsynth.errors import DataFileError, ParameterError

__all__ = [
    "TABLE_SUFFIXES",
    "atomic_folder",
    "atomic_path",
    "current_umask",
    "neutralise_formulas",
    "atomic_write_text",
    "check_field_counts",
    "read_table",
    "table_format",
    "write_table",
]

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def table_format(path: Path, what: str) -> str:
    """``csv`` or ``parquet`` from the file's suffix, or a :class:`DataFileError` saying so."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise DataFileError(
        f"{what} {path} has the suffix '{path.suffix}'; use a .csv or .parquet file"
    )


def read_table(path: str | Path, *, encoding: str = "utf-8") -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame.

    Raises :class:`~healthsynth.errors.DataFileError` with one sentence for a missing, empty,
    header-only or undecodable file and for duplicate column names.
    """
    path = Path(path)
    fmt = table_format(path, "data file")
    if not path.exists():
        raise DataFileError(f"data file {path} does not exist")
    if path.is_dir():
        raise DataFileError(f"data file {path} is a folder; give a .csv or .parquet file")
    if path.stat().st_size == 0:
        raise DataFileError(f"data file {path} is empty")
    if fmt == "parquet":
        try:
            df = pd.read_parquet(path)
        except Exception as e:  # pyarrow raises several types for corrupt files
            detail = " ".join(str(e).split())
            raise DataFileError(
                f"data file {path} is not a readable Parquet file ({detail})"
            ) from None
    else:
        raw = path.read_bytes()
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as e:
            raise DataFileError(
                f"data file {path} is not valid {encoding} (byte 0x{raw[e.start]:02x} at offset "
                f"{e.start}); re-save it as UTF-8 or pass the right --encoding (e.g. latin-1)"
            ) from None
        except LookupError:
            raise ParameterError(f"encoding '{encoding}' is not known to Python") from None
        text = text.lstrip("\ufeff")
        if not text.strip():
            raise DataFileError(f"data file {path} is empty")
        try:
            header = next(csv.reader(io.StringIO(text, newline=""), skipinitialspace=True))
        except (csv.Error, StopIteration) as e:
            raise DataFileError(f"data file {path} has an unreadable header ({e})") from None
        names = [h.strip() for h in header]
        dups = sorted({h for h in names if names.count(h) > 1})
        if dups:
            raise DataFileError(
                f"data file {path} has duplicate column names: {', '.join(dups)}; rename them"
            )
        if any(not h for h in names):
            at = names.index("") + 1
            hint = " (the header line ends with a comma)" if at == len(names) else ""
            raise DataFileError(
                f"data file {path} has an empty column name at position {at}{hint}; give every "
                "column a name"
            )
        check_field_counts(text, len(header), what=f"data file {path}")
        try:
            # index_col=False: never take the first column as an index, whatever the rows hold
            df = pd.read_csv(io.StringIO(text), skipinitialspace=True, index_col=False)
        except pd.errors.ParserError as e:
            detail = " ".join(str(e).split())
            raise DataFileError(
                f"data file {path} is not a well-formed CSV ({detail}); check the quoting and "
                "that every row has as many fields as the header"
            ) from None
        df.columns = [str(c).strip() for c in df.columns]
    if len(df.columns) and pd.Index(df.columns).duplicated().any():
        dups = sorted(set(pd.Index(df.columns)[pd.Index(df.columns).duplicated()]))
        raise DataFileError(f"data file {path} has duplicate column names: {dups}; rename them")
    if len(df) == 0:
        raise DataFileError(f"data file {path} has a header but no rows")
    return df


def check_field_counts(text: str, n_header: int, *, what: str) -> None:
    """Raise :class:`DataFileError` if a row of CSV ``text`` has another width than the header.

    Without this, pandas reads a file whose rows all end in a stray comma with the first column
    as the index (every column shifted one to the left) and fills a short row with missing
    values, both without a word. Rows are read as pandas reads them: quoted fields may hold
    commas and line breaks, and blank lines are skipped. ``what`` names the file in the
    message, which gives the first bad line, the counts, how many lines are alike, and the fix.
    """
    try:
        # fast pass in C: the set of row lengths; the slow pass below only runs on a mismatch
        rows = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
        next(rows, None)
        if set(map(len, rows)) <= {0, n_header}:
            return
    except csv.Error:
        pass  # the slow pass says where
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
    first: tuple[int, int] | None = None
    bad = 0
    start = 1
    try:
        next(reader, None)
        while True:
            start = reader.line_num + 1
            row = next(reader, None)
            if row is None:
                break
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line, which pandas skips
            if len(row) != n_header:
                bad += 1
                if first is None:
                    first = (start, len(row))
    except csv.Error as e:
        if "field larger than field limit" in str(e):
            return  # a huge quoted field: leave the file to pandas' own checks
        raise DataFileError(
            f"{what} is not a well-formed CSV near line {start} ({e}); check the quoting there"
        ) from None
    if first is None:
        return
    line, got = first
    more = f" (and {bad - 1} more line{'s' if bad > 2 else ''} like it)" if bad > 1 else ""
    if got > n_header:
        fix = (
            "a comma at the end of the line, or an unquoted comma inside a value, adds a field: "
            "remove the trailing comma or put the value in double quotes"
        )
    else:
        fix = "add the missing field (an empty one for a missing value) or check the quoting"
    raise DataFileError(
        f"{what} has {got} field{'s' if got != 1 else ''} on line {line}{more} but {n_header} "
        f"column names in its header; {fix}"
    )


def read_yaml(path: str | Path, *, what: str) -> Any:
    """Parse a YAML file, with every problem as one :class:`DataFileError` sentence.

    ``what`` names the file in messages (``"rules file"``, ``"benchmark config"``). Syntax
    errors give the line and column. Only ``true``/``false`` are booleans (YAML 1.2), so a value
    such as ``no`` or ``off`` stays text.
    """
    import yaml

    from healthsynth.errors import DataFileError

    p = Path(path)
    if not p.is_file():
        raise DataFileError(f"{what} '{p}' does not exist; check the path")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataFileError(f"{what} '{p}' is not UTF-8 text; save it as UTF-8") from e
    except OSError as e:
        raise DataFileError(f"{what} '{p}' cannot be read ({e.strerror}); check it") from e
    try:
        return yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a safe loader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None)
        why = f" ({problem})" if problem else ""
        raise DataFileError(f"{what} '{p}' is not valid YAML{at}{why}; fix the syntax there") from e


def _yaml_loader() -> Any:
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        """Safe loader where only ``true``/``false`` are booleans (YAML 1.2)."""

    Loader.yaml_implicit_resolvers = {
        k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool",
        re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"),
    )
    return Loader


def atomic_write_text(path: Path, text: str) -> None:
    """Write text to ``path`` through a temporary file."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


#: What a spreadsheet reads as the start of a formula (OWASP's list for CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with text cells and column names that a spreadsheet would run as a formula defused.

    A text value or column name that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
    return gets a leading apostrophe, which spreadsheets show as text. Numbers are left alone
    (``-5`` is a number, not a formula); the input is not changed.
    """

    def safe(v: Any) -> Any:
        return "'" + v if isinstance(v, str) and v.startswith(_FORMULA_STARTS) else v

    out = df.copy()
    for c in out.columns:
        s = out[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            out[c] = s.astype(object).map(safe)
        elif s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            out[c] = s.map(safe)
    out.columns = [safe(str(c)) for c in out.columns]
    return out


def write_table(df: pd.DataFrame, path: str | Path, *, csv_safe: bool = False) -> Path:
    """Write a DataFrame as CSV or Parquet (by suffix), atomically.

    ``csv_safe`` defuses cells a spreadsheet would run as formulas (see
    :func:`neutralise_formulas`); it applies to CSV files only.
    """
    path = Path(path)
    fmt = table_format(path, "output file")
    with atomic_path(path) as tmp:
        if fmt == "csv":
            (neutralise_formulas(df) if csv_safe else df).to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)
    return path
