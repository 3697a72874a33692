"""Reading and writing tables (CSV, Parquet) with clear errors and atomic writes.

Reading takes a CSV file's separator from its header line (comma, semicolon or tab; decimal
commas in a semicolon file), and reads ISO-date text columns as datetimes, so a table written
here reads back as it was.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from healthsynth.data._outputs import atomic_folder, atomic_path, current_umask
from healthsynth.errors import DataFileError, HealthsynthWarning, ParameterError

__all__ = [
    "TABLE_SUFFIXES",
    "atomic_folder",
    "atomic_path",
    "current_umask",
    "neutralise_formulas",
    "atomic_write_text",
    "check_field_counts",
    "csv_separator",
    "iso_datetimes",
    "parse_dates",
    "read_table",
    "table_format",
    "write_table",
]

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")

logger = logging.getLogger(__name__)


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

    A CSV file's separator is read from its header line: a comma, or a semicolon or a tab when
    the header holds that and no comma (a header holding two of them is refused). In a
    semicolon file, a column whose every value is a number with a decimal comma (``1,5``) is
    read as numbers. In both formats, a text column whose every value is an ISO date
    (``YYYY-MM-DD``) or date-time (``YYYY-MM-DD HH:MM[:SS[.fff]]``, ``T`` or a space between)
    is read as datetimes, so a table written by :func:`write_table` reads back the same; other
    date forms stay text, with a warning when a column looks like dates.

    Raises :class:`~healthsynth.errors.DataFileError` with one sentence for a missing, empty,
    header-only or undecodable file, for duplicate column names and for rows whose field count
    differs from the header's.
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
        df = _read_csv(path, encoding)
    if len(df.columns) and pd.Index(df.columns).duplicated().any():
        dups = sorted(set(pd.Index(df.columns)[pd.Index(df.columns).duplicated()]))
        raise DataFileError(f"data file {path} has duplicate column names: {dups}; rename them")
    if len(df) == 0:
        raise DataFileError(f"data file {path} has a header but no rows")
    return parse_dates(df, what=f"data file {path}")


def _read_csv(path: Path, encoding: str) -> pd.DataFrame:
    """The frame of a CSV file, after the checks :func:`read_table` lists."""
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
    sep = csv_separator(text, what=f"data file {path}")
    try:
        rows = csv.reader(io.StringIO(text, newline=""), delimiter=sep, skipinitialspace=True)
        header = next(rows)
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
        hint = f" (the header line ends with a {_SEPARATORS[sep]})" if at == len(names) else ""
        raise DataFileError(
            f"data file {path} has an empty column name at position {at}{hint}; give every "
            "column a name"
        )
    check_field_counts(text, len(header), what=f"data file {path}", delimiter=sep)
    try:
        # index_col=False: never take the first column as an index, whatever the rows hold
        df = pd.read_csv(io.StringIO(text), sep=sep, skipinitialspace=True, index_col=False)
    except pd.errors.ParserError as e:
        detail = " ".join(str(e).split())
        raise DataFileError(
            f"data file {path} is not a well-formed CSV ({detail}); check the quoting and "
            "that every row has as many fields as the header"
        ) from None
    df.columns = [str(c).strip() for c in df.columns]
    if sep == ";":
        df = _decimal_commas(df)
    if sep != ",":
        logger.info("data file %s: read with a %s as the separator", path, _SEPARATORS[sep])
    return df


#: Field separators a CSV file may use, and their names in messages.
_SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab"}


def csv_separator(text: str, *, what: str) -> str:
    """The field separator of CSV ``text``, from the characters of its header line.

    A comma, unless the header line holds no comma outside double quotes but a semicolon or a
    tab, which is then the separator. A header line holding two of them is refused with a
    :class:`DataFileError` naming ``what``: which one separates the fields cannot be told.
    """
    seen: list[str] = []
    quoted = False
    for ch in text[:1_000_000]:
        if ch == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif ch in "\r\n":
            break
        elif ch in _SEPARATORS and ch not in seen:
            seen.append(ch)
    if len(seen) > 1:
        both = " and ".join(f"a {_SEPARATORS[c]}" for c in seen)
        raise DataFileError(
            f"{what} holds both {both} between the names on its header line (line 1), so its "
            "separator cannot be told; save it with one separator (commas, or semicolons with "
            "decimal commas) or put the names holding the other character in double quotes"
        )
    return seen[0] if seen else ","


#: A number written with a decimal comma (``1,5``, ``-0,25``), or a whole number.
_COMMA_NUMBER = re.compile(r"\s*[-+]?(?:\d+,\d*|,\d+|\d+)(?:[eE][-+]?\d+)?\s*")


def _decimal_commas(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with each text column whose every value is a decimal-comma number made numeric."""
    for name in df.columns:
        s = df[name]
        present = s.dropna() if s.dtype == object else s.iloc[:0]
        if not len(present) or not isinstance(present.iloc[0], str):
            continue
        if not _COMMA_NUMBER.fullmatch(present.iloc[0]):
            continue  # a quick look at one value before any pass over the column
        if pd.api.types.infer_dtype(present, skipna=True) != "string":
            continue
        # pandas left the column as text, so a value it could not read as a number holds a
        # comma; the column turns numeric only if every value reads once commas are points
        num = pd.to_numeric(s.str.replace(",", ".", regex=False), errors="coerce")
        if num.notna().sum() == len(present):
            df[name] = num
    return df


#: An ISO 8601 date or date-time without time zone, as ``write_table`` writes datetimes.
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?")
#: Other things that look like dates: ``12/31/1999``, ``31.12.99``, ``1999/12/31``, ISO with a
#: time zone. They are left as text (which is day and which month cannot be told).
_OTHER_DATE = re.compile(
    r"(?:\d{1,2}([/.-])\d{1,2}\1(?:\d{4}|\d{2})|\d{4}([/.])\d{1,2}\2\d{1,2})"
    r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:\s?[AaPp][Mm])?)?"
    r"|\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})"
)


def parse_dates(df: pd.DataFrame, *, what: str) -> pd.DataFrame:
    """``df`` with its ISO-date text columns (and columns of ``datetime.date``) as datetimes.

    A column is converted only when every non-missing value is an ISO date or date-time that
    parses (``pandas.to_datetime`` with ``format="ISO8601"``, no guessing); otherwise it is
    left as it is, with a :class:`HealthsynthWarning` naming ``what`` when it looks like dates
    all the same. ``df`` is changed in place and returned.
    """
    for name in df.columns:
        s = df[name]
        if s.dtype != object and not isinstance(s.dtype, pd.StringDtype):
            continue
        present = s.dropna()
        if not len(present):
            continue
        first = present.iloc[0]
        if type(first) is dt.date:  # a Parquet date column
            if pd.api.types.infer_dtype(present, skipna=True) == "date":
                t = pd.to_datetime(present, errors="coerce")
                if t.notna().all():
                    df[name] = t.reindex(s.index)
            continue
        head = first.strip() if isinstance(first, str) else ""
        iso = _ISO_DATE.fullmatch(head) is not None
        if not (iso or _OTHER_DATE.fullmatch(head)):
            continue  # a quick look at one value before any pass over the column
        if pd.api.types.infer_dtype(present, skipna=True) != "string":
            continue
        if iso:
            t = _iso_parse(present)
            if t.notna().all():
                df[name] = t.reindex(s.index)
            elif t.notna().mean() >= 0.9:  # a few odd entries among dates: say which
                bad = present[t.isna()].iloc[0]
                _warn(
                    f"column '{name}' in {what} holds ISO dates but {bad!r} is not a valid date "
                    "in the years 1678 to 2261, so the column is read as text; correct that "
                    "value or leave it empty to have the column read as dates"
                )
        elif present.str.strip().str.fullmatch(_OTHER_DATE).all():
            _warn(
                f"column '{name}' in {what} looks like dates but not written as YYYY-MM-DD or "
                f"YYYY-MM-DD HH:MM:SS without a time zone (e.g. {first!r}), so it is read as "
                "text; rewrite the values in that form to have them read as dates"
            )
    return df


def iso_datetimes(present: pd.Series) -> pd.Series | None:
    """``present`` (values, none missing) as datetimes if every one is an ISO date string."""
    if not len(present) or not isinstance(present.iloc[0], str):
        return None
    if not _ISO_DATE.fullmatch(present.iloc[0].strip()):
        return None
    if pd.api.types.infer_dtype(present, skipna=True) != "string":
        return None
    t = _iso_parse(present)
    return t if t.notna().all() else None


def _iso_parse(text: pd.Series) -> pd.Series:
    """Strings (none missing) as datetimes; ``NaT`` where one is not a valid ISO date."""
    text = text.astype("string[pyarrow]")  # its regular expressions run in C++, 4x faster
    ok = text.str.fullmatch(_ISO_DATE.pattern)
    if not ok.all():  # spaces around some values, or values of other forms
        text = text.str.strip()
        ok = text.str.fullmatch(_ISO_DATE.pattern)
    t = pd.to_datetime(text.where(ok), format="ISO8601", errors="coerce")
    return t.astype("datetime64[ns]")


def _warn(message: str) -> None:
    warnings.warn(message, HealthsynthWarning, stacklevel=4)


def check_field_counts(text: str, n_header: int, *, what: str, delimiter: str = ",") -> None:
    """Raise :class:`DataFileError` if a row of CSV ``text`` has another width than the header.

    Without this, pandas reads a file whose rows all end in a stray comma with the first column
    as the index (every column shifted one to the left) and fills a short row with missing
    values, both without a word. Rows are read as pandas reads them, fields split at
    ``delimiter``: quoted fields may hold it and line breaks, and blank lines are skipped.
    ``what`` names the file in the message, which gives the first bad line, the counts, how
    many lines are alike, and the fix.
    """
    try:
        # fast pass in C: the set of row lengths; the slow pass below only runs on a mismatch
        rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True)
        next(rows, None)
        if set(map(len, rows)) <= {0, n_header}:
            return
    except csv.Error:
        pass  # the slow pass says where
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True)
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
        sep = _SEPARATORS.get(delimiter, repr(delimiter))
        fix = (
            f"a {sep} at the end of the line, or an unquoted {sep} inside a value, adds a "
            f"field: remove the trailing {sep} or put the value in double quotes"
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
