"""The rows of the datasets a benchmark configuration names, and their fixed holdout files.

Paths in a :class:`~healthsynth.benchmark._config.DatasetSpec` are already absolute (made so
when the configuration was read); a problem is reported in one sentence naming the dataset.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from healthsynth.errors import DataError, DataFileError

if TYPE_CHECKING:
    from healthsynth.benchmark._config import DatasetSpec

__all__ = ["load_frame", "load_holdout"]


def _read(spec: DatasetSpec, path: str, key: str, config_source: str) -> pd.DataFrame:
    from healthsynth.data import read_table

    if not Path(path).is_file():
        raise DataFileError(
            f"dataset '{spec.name}': the file '{path}' does not exist; check '{key}' in "
            f"{config_source or 'the config'} (relative paths start at the config's folder)"
        )
    return read_table(path)


def _select(spec: DatasetSpec, df: pd.DataFrame, what: str) -> pd.DataFrame:
    """``df`` with the spec's ``columns`` kept and ``drop`` removed."""
    cols = list(df.columns)
    asked = list(spec.columns or []) + list(spec.drop)
    missing = [c for c in asked if c not in cols]
    if missing:
        raise DataError(
            f"{what} has no column '{missing[0]}' (in 'columns' or 'drop'); its columns: "
            f"{', '.join(map(str, cols))}"
        )
    if spec.columns:
        df = df[list(spec.columns)]
    if spec.drop:
        df = df.drop(columns=list(spec.drop))
    return df


def load_holdout(
    spec: DatasetSpec, frame: pd.DataFrame, *, config_source: str = ""
) -> pd.DataFrame | None:
    """The fixed holdout rows of ``spec`` (``None`` when it holds out a share instead).

    The file gets the dataset's column selection and must then have the data's columns.
    """
    if not isinstance(spec.holdout, str):
        return None
    df = _select(spec, _read(spec, spec.holdout, "holdout", config_source), "its holdout file")
    if set(map(str, df.columns)) != set(map(str, frame.columns)):
        extra = [str(c) for c in df.columns if c not in frame.columns]
        lack = [str(c) for c in frame.columns if c not in df.columns]
        what = (f"lacks the column '{lack[0]}'" if lack else f"has the column '{extra[0]}'") + (
            " that the data has" if lack else " that the data lacks"
        )
        raise DataError(
            f"dataset '{spec.name}': the holdout file '{spec.holdout}' {what}; give it the "
            f"data's columns ({', '.join(map(str, frame.columns))})"
        )
    if len(df) < 5:
        raise DataError(
            f"dataset '{spec.name}': the holdout file '{spec.holdout}' has {len(df)} rows; "
            "give it at least 5"
        )
    return df[list(frame.columns)].reset_index(drop=True)


def load_frame(spec: DatasetSpec, *, config_source: str = "") -> pd.DataFrame:
    """The rows of one dataset, with its column selection applied and its roles checked."""
    from healthsynth.data import load_dataset

    where = f"dataset '{spec.name}'"
    if spec.source is not None:
        df = load_dataset(spec.source)
    else:
        assert spec.path is not None
        df = _read(spec, spec.path, "path", config_source)
    df = _select(spec, df, where)
    for role, names in (
        ("target", [spec.target] if spec.target else []),
        ("sensitive", spec.sensitive),
    ):
        for c in names:
            if c not in df.columns:
                raise DataError(
                    f"{where}: the {role} column '{c}' is not in the data; its columns: "
                    f"{', '.join(map(str, df.columns))}"
                )
    if spec.target is not None and df[spec.target].nunique() < 2:
        raise DataError(f"{where}: the target '{spec.target}' has fewer than two values")
    if spec.max_rows is not None and len(df) > spec.max_rows:
        df = df.sample(spec.max_rows, random_state=0).reset_index(drop=True)
    if len(df) < 10:
        raise DataError(f"{where} has {len(df)} rows; a benchmark needs at least 10")
    return df.reset_index(drop=True)
