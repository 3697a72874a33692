"""timeline-lm's folders: samples written into one, and the model folder's state.

A sample folder (CSV or Parquet block by block, or a standard) is written under a temporary
name and appears only when complete. A model folder's ``generator.json`` holds the codec, the
table template, the learned structure and the calibration offsets; each is checked as it is
read back, and a corrupted one is refused with one sentence.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from healthsynth.data import neutralise_formulas
from healthsynth.data._io import atomic_folder as data_atomic_folder
from healthsynth.errors import ModelFolderError, ParameterError
from healthsynth.generators._folder import check_folder_names
from healthsynth.generators.timeline_lm._calibrate import bias_from_json, bias_to_json
from healthsynth.generators.timeline_lm._codec import TimelineCodec
from healthsynth.generators.timeline_lm._structure import Structure

__all__ = ["load_state", "save_state", "write_sample_folder"]


def save_state(gen: Any, folder: Path) -> dict[str, Any]:
    """Write ``gen``'s weights into ``folder`` (a Hugging Face folder); its generator.json part."""
    from healthsynth.generators._lm._io import save_model

    save_model(gen.model_, folder)
    return {
        "codec": gen.codec_.to_dict(),
        "template": gen.template_,
        "structure": gen.structure_.to_dict(),
        "calibration": bias_to_json(gen),
    }


def load_state(gen: Any, folder: Path, meta: dict[str, Any]) -> None:
    """Set ``gen``'s fitted state from a model folder and its generator.json ``meta``."""
    from healthsynth.generators._lm._io import load_numpy

    def corrupted(part: str, e: Exception) -> ModelFolderError:
        return ModelFolderError(
            f"model folder {folder} is corrupted: generator.json's {part} is unreadable ({e})"
        )

    try:
        gen.codec_ = TimelineCodec(meta["codec"])
        gen.template_ = meta["template"]
    except (KeyError, TypeError, ValueError, AssertionError) as e:
        raise corrupted("codec", e) from None
    try:
        names = [*gen.template_["tables"], gen.template_["roles"]["patients"]]
    except (KeyError, TypeError) as e:
        raise corrupted("template", e) from None
    # the template's table names become file names when sampling to a folder: checked
    # before anything else is read from them
    check_folder_names(folder, names)
    check_folder_names(folder, sorted({t for t, _ in gen.codec_.items}))
    try:
        # folders saved before the learned structure have none
        gen.structure_ = Structure([f"{t}/{i}" for t, i in gen.codec_.items], meta.get("structure"))
    except (KeyError, TypeError, ValueError, AssertionError) as e:
        raise corrupted("structure", e) from None
    gen.calibration_ = bias_from_json(gen, folder, meta.get("calibration"))
    gen.model_ = load_numpy(folder / "model", owner=folder, vocab_size=gen.codec_.vocab_size)
    gen.schema_ = gen.codec_.static_schema
    gen.sampler_ = None


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
