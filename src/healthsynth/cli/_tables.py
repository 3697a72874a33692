"""Multi-table datasets on the command line: ``--table NAME=FILE`` and the patients' roles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from healthsynth.errors import ParameterError

__all__ = ["parse_tables", "read_dataset", "scalar"]


def parse_tables(items: list[str]) -> dict[str, Path]:
    """``["patients=p.csv", "labs=l.csv"]`` -> ``{"patients": Path("p.csv"), ...}``."""
    from healthsynth.data import check_name

    tables: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise ParameterError(f"--table '{item}' is not of the form NAME=FILE")
        if name in tables:
            raise ParameterError(f"--table names the table '{name}' twice")
        # a table name becomes a file name (NAME.csv) when the model samples to a folder
        check_name(name, what="table name", where=f"in --table '{item}'", error=ParameterError)
        tables[name] = Path(path)
    return tables


def scalar(text: str) -> Any:
    """A number when ``text`` reads as one (``"1"`` -> 1), else the text."""
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() else number


def read_dataset(tables: dict[str, Path], roles: dict[str, Any]) -> Any:
    """Read the tables into a :class:`healthsynth.data.Dataset` with the given roles."""
    from healthsynth.data import Dataset

    return Dataset.read(
        tables,
        key=roles["key"],
        time=roles["time"],
        patients=roles.get("patients"),
        end=roles.get("end"),
        death=roles.get("death"),
        death_value=roles.get("death_value", 1),
        death_event=roles.get("death_event"),
        sex=roles.get("sex"),
        age=roles.get("age"),
    )
