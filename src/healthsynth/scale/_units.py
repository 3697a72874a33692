"""The synthetic input of a scale-out evaluation, read in units.

:func:`synthetic_files` checks what was given (a folder of Parquet shards, Parquet files, or one
CSV file); :func:`_units` cuts the files into read units (Parquet row groups joined up to
``block_rows``, a CSV file whole), each scored as one block; :func:`_subsample` draws the seeded
subsample the other metrics see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from healthsynth.errors import DataFileError

__all__ = ["BLOCK_ROWS", "synthetic_files"]

#: rows per read unit (Parquet row groups are joined up to this many)
BLOCK_ROWS = 50_000


@dataclass(frozen=True)
class _Unit:
    """A piece of the input scored as one block: row groups ``groups`` of file ``path``."""

    key: str
    path: str
    groups: tuple[int, ...] | None  # None: the whole file (CSV)
    rows: int


def synthetic_files(synthetic: str | Path | Sequence[str | Path]) -> list[Path]:
    """The data files of ``synthetic``: a folder's ``*.parquet``, or the files given."""
    if isinstance(synthetic, (str, Path)):
        path = Path(synthetic)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*.parquet") if not p.name.startswith((".", "_")))
            if not files:
                raise DataFileError(
                    f"synthetic folder {path} holds no .parquet files; give the folder that "
                    "'sample --engine ray' wrote, or a .parquet or .csv file"
                )
            return files
        paths = [path]
    else:
        paths = [Path(p) for p in synthetic]
    for p in paths:
        if not p.is_file():
            raise DataFileError(f"synthetic file {p} does not exist; check the path")
        if p.suffix.lower() not in (".parquet", ".pq", ".csv"):
            raise DataFileError(
                f"synthetic file {p} is not .parquet or .csv; convert it to Parquet first"
            )
    if len(paths) > 1 and any(p.suffix.lower() == ".csv" for p in paths):
        raise DataFileError("give one CSV file, or Parquet files; not several CSV files")
    return paths


def _units(files: list[Path], block_rows: int) -> list[_Unit]:
    import pyarrow.parquet as pq

    units: list[_Unit] = []
    for i, f in enumerate(files):
        if f.suffix.lower() == ".csv":
            rows = len(pd.read_csv(f, usecols=[0]))
            units.append(_Unit(key=f"{i}:all", path=str(f), groups=None, rows=int(rows)))
            continue
        try:
            meta = pq.ParquetFile(f).metadata
        except Exception as e:  # pyarrow raises several types for a broken file
            raise DataFileError(
                f"synthetic file {f} is not a readable Parquet file ({e})"
            ) from None
        groups: list[int] = []
        rows = 0
        for g in range(meta.num_row_groups):
            groups.append(g)
            rows += meta.row_group(g).num_rows
            if rows >= block_rows or g == meta.num_row_groups - 1:
                units.append(
                    _Unit(key=f"{i}:{groups[0]}", path=str(f), groups=tuple(groups), rows=rows)
                )
                groups, rows = [], 0
    return [u for u in units if u.rows > 0]


def _read_unit(unit: _Unit, columns: list[str] | None = None) -> pd.DataFrame:
    if unit.groups is None:
        # as read_table reads a whole file: the header's separator, ISO dates as datetimes
        from healthsynth.data._io import csv_separator, parse_dates

        with open(unit.path, encoding="utf-8-sig") as fh:
            sep = csv_separator(fh.readline(), what=f"data file {unit.path}")
        df = pd.read_csv(unit.path, usecols=columns, sep=sep, encoding="utf-8-sig")
        return parse_dates(df, what=f"data file {unit.path}")
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(unit.path)
    names = None if columns is None else [c for c in columns if c in pf.schema_arrow.names]
    return pf.read_row_groups(list(unit.groups), columns=names).to_pandas()


def _subsample(units: list[_Unit], total: int, size: int, seed: int) -> pd.DataFrame:
    """``size`` rows drawn uniformly (seeded) from all units, in input order."""
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(total, size=min(size, total), replace=False))
    parts = []
    start = 0
    for u in units:
        local = take[(take >= start) & (take < start + u.rows)] - start
        if len(local):
            parts.append(_read_unit(u).iloc[local])
        start += u.rows
    return pd.concat(parts, ignore_index=True)
