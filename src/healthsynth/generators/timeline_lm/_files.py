"""Sampling a fitted timeline-lm into a folder: CSV or Parquet block by block, or a standard.

The folder is written under a temporary name and appears only when complete.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from healthsynth.data import neutralise_formulas
from healthsynth.data._io import atomic_folder as data_atomic_folder
from healthsynth.errors import ParameterError

__all__ = ["write_sample_folder"]


def write_sample_folder(
    gen: Any,
    n: int,
    folder: str | Path,
    *,
    fmt: str,
    conditions: Mapping[str, Any] | None,
    seed: int | None,
    block_size: int,
    csv_safe: bool,
) -> Path:
    """:meth:`TimelineLM.sample_to_folder` for the fitted generator ``gen``."""
    from healthsynth.data import export_dataset_as

    formats = ("csv", "parquet", "omop", "meds", "fhir")
    if fmt not in formats:
        raise ParameterError(f"format '{fmt}' is not one of {', '.join(formats)}")
    n = gen._check_n(n, "patients")
    seeds = gen._block_seeds(n, seed, block_size)
    with data_atomic_folder(
        folder,
        action="write the synthetic patients",
        kind="timelines sample",
    ) as tmp:
        if fmt in ("csv", "parquet"):
            done = 0
            for i, block_seed in enumerate(seeds):
                m = min(block_size, n - done)
                if m <= 0:
                    break
                ds = gen.sample(m, conditions=conditions, seed=block_seed, id_start=done)
                for name, df in ds.tables.items():
                    path = tmp / f"{name}.{fmt}"
                    if fmt == "csv":
                        if csv_safe:
                            df = neutralise_formulas(df)
                        df.to_csv(path, mode="a" if i else "w", header=(i == 0), index=False)
                    else:
                        df.to_parquet(tmp / f"{name}.part{i:05d}.parquet", index=False)
                done += m
            if fmt == "parquet":
                _merge_parquet_parts(tmp)
        else:
            ds = gen.sample(n, conditions=conditions, seed=seeds[0])
            export_dataset_as(
                ds,
                tmp / "export",
                fmt=fmt,  # type: ignore[arg-type]
                code_map=gen.code_map_,
            )
            for child in (tmp / "export").iterdir():
                child.rename(tmp / child.name)
            (tmp / "export").rmdir()
    return Path(folder)


def _merge_parquet_parts(folder: Path) -> None:
    import pyarrow.parquet as pq

    names = sorted({p.name.split(".part")[0] for p in folder.glob("*.part*.parquet")})
    for name in names:
        parts = sorted(folder.glob(f"{name}.part*.parquet"))
        writer = None
        for part in parts:
            table = pq.read_table(part)
            if writer is None:
                writer = pq.ParquetWriter(folder / f"{name}.parquet", table.schema)
            writer.write_table(table.cast(writer.schema))
            part.unlink()
        if writer is not None:
            writer.close()
