"""What a block of a distributed sample becomes on disk, in every output format.

Each format has two halves:

* on a worker, :func:`block_files` turns one sampled block (a table, or a
  :class:`~healthsynth.data.Dataset` of patients) into file contents, ``{name: bytes}``;
* on the driver, a :class:`Writer` takes those contents **in block order** and lays them out
  in the output folder (or file): Parquet shards are written as they are, CSV and Parquet
  tables are appended, OMOP tables get their row IDs continued across blocks, MEDS gets one
  data shard per block and one merged code list, FHIR gets one Bundle file per patient.

Because the driver writes in block order and each block depends only on its seed, the bytes
written are the same for any number of workers.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["TABLE_KIND", "TIMELINES_KIND", "Writer", "block_files", "parquet_bytes"]

#: manifest kinds: a folder of table shards; a folder of synthetic patients (as the local path)
TABLE_KIND = "table sample"
TIMELINES_KIND = "timelines sample"
#: the calendar date day 0 stands for in the health formats (as ``export_dataset_as``)
_INDEX_DATE = "2020-01-01"
#: OMOP row IDs numbered 1..n within a block, continued across blocks by the driver
_OMOP_IDS = {
    "observation_period": "observation_period_id",
    "condition_occurrence": "condition_occurrence_id",
    "measurement": "measurement_id",
}


# -- worker side ------------------------------------------------------------------------------
def parquet_bytes(df: pd.DataFrame) -> bytes:
    """``df`` as Parquet bytes; an all-missing text column is typed as text, not as null."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    for i, field in enumerate(table.schema):
        if pa.types.is_null(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.string()))
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())


def _csv_bytes(df: pd.DataFrame, header: bool) -> bytes:
    return df.to_csv(index=False, header=header).encode("utf-8")


def block_files(data: Any, *, fmt: str, index: int, start: int, code_map: Any = None) -> dict:
    """The files of one sampled block (``data``: a DataFrame, or a Dataset of patients).

    ``index`` is the block's position and ``start`` the number of rows (patients) before it.
    """
    if isinstance(data, pd.DataFrame):
        if fmt == "csv":
            return {"table": _csv_bytes(data, header=index == 0)}
        return {"table": parquet_bytes(data)}
    if fmt == "csv":
        return {name: _csv_bytes(df, header=index == 0) for name, df in data.tables.items()}
    if fmt == "parquet":
        return {name: parquet_bytes(df) for name, df in data.tables.items()}
    return _health_format(data, fmt=fmt, start=start, code_map=code_map)


def _health_format(data: Any, *, fmt: str, start: int, code_map: Any) -> dict[str, bytes]:
    """OMOP, MEDS or FHIR files of one block (patient IDs continued from ``start``)."""
    from healthsynth.data._prepared import index_date_of, prepare

    prepared = prepare(data, code_map=code_map, index=index_date_of(_INDEX_DATE))
    if not prepared.ids_are_keys and start:
        # text keys are numbered 1..n within the block: continue the numbering across blocks
        prepared = replace(
            prepared,
            patients=prepared.patients.assign(person_id=prepared.patients["person_id"] + start),
            events=prepared.events.assign(person_id=prepared.events["person_id"] + start),
            attributes=prepared.attributes.assign(
                person_id=prepared.attributes["person_id"] + start
            ),
        )
    with tempfile.TemporaryDirectory(prefix="healthsynth-block-") as tmp:
        folder = Path(tmp)
        if fmt == "omop":
            from healthsynth.data._omop import write_omop

            write_omop(prepared, folder)
        elif fmt == "meds":
            from healthsynth.data._export import optional_module
            from healthsynth.data._meds import write_meds

            meds = optional_module("meds", "meds", "Writing MEDS")
            write_meds(prepared, folder, meds=meds, name="synthetic")
        else:
            from healthsynth.data._export import optional_module
            from healthsynth.data._fhir import write_fhir

            optional_module("fhir.resources", "fhir.resources", "Writing FHIR")
            write_fhir(prepared, folder)
        return {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }


# -- driver side ------------------------------------------------------------------------------
class Writer:
    """Lays out the blocks' files in ``target`` (a temporary folder or file), in block order."""

    def __init__(self, target: Path, *, fmt: str, tables: list[str] | None = None) -> None:
        self.target = target
        self.fmt = fmt
        self.tables = tables
        self._parquet: dict[str, Any] = {}  # name -> open ParquetWriter
        self._counts: dict[str, int] = {}  # OMOP table -> rows written so far
        self._codes: dict[str, Any] = {}  # MEDS code -> its metadata row
        self._codes_schema: Any = None

    def add(self, index: int, files: dict[str, bytes]) -> None:
        """Write block ``index`` (called for blocks 0, 1, 2 … in order)."""
        method = getattr(self, f"_add_{self.fmt.replace('-', '_')}")
        method(index, files)

    # tables
    def _add_shards(self, index: int, files: dict[str, bytes]) -> None:
        (self.target / f"part-{index:05d}.parquet").write_bytes(files["table"])

    def _add_table_parquet(self, index: int, files: dict[str, bytes]) -> None:
        self._append_parquet("table", self.target, files["table"])

    def _add_table_csv(self, index: int, files: dict[str, bytes]) -> None:
        with open(self.target, "wb" if index == 0 else "ab") as fh:
            fh.write(files["table"])

    # timelines
    def _add_csv(self, index: int, files: dict[str, bytes]) -> None:
        for name, data in files.items():
            with open(self.target / f"{name}.csv", "wb" if index == 0 else "ab") as fh:
                fh.write(data)

    def _add_parquet(self, index: int, files: dict[str, bytes]) -> None:
        for name, data in files.items():
            self._append_parquet(name, self.target / f"{name}.parquet", data)

    def _add_omop(self, index: int, files: dict[str, bytes]) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        for name, data in files.items():
            table_name = name.removesuffix(".parquet")
            table = pq.read_table(pa.BufferReader(data))
            id_col = _OMOP_IDS.get(table_name)
            done = self._counts.get(table_name, 0)
            if id_col is not None and done:
                i = table.schema.get_field_index(id_col)
                table = table.set_column(
                    i, table.schema.field(i), pc.add(table.column(i), pa.scalar(done, pa.int64()))
                )
            self._counts[table_name] = done + table.num_rows
            self._append_table(table_name, self.target / name, table)

    def _add_meds(self, index: int, files: dict[str, bytes]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        for name, data in files.items():
            if name.startswith("data/"):
                shard = self.target / Path(name).parent / f"{index}.parquet"
                shard.parent.mkdir(parents=True, exist_ok=True)
                shard.write_bytes(data)
            elif name.endswith("codes.parquet"):
                codes = pq.read_table(pa.BufferReader(data))
                self._codes_schema = codes.schema
                for row in codes.to_pylist():
                    self._codes.setdefault(row["code"], row)
                self._codes_name = name
            elif name.endswith(".parquet"):  # the subject splits
                self._append_parquet(name, self.target / name, data)
            elif index == 0:  # dataset.json: the first block's
                path = self.target / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)

    def _add_fhir(self, index: int, files: dict[str, bytes]) -> None:
        for name, data in files.items():
            (self.target / name).write_bytes(data)

    # shared
    def _append_parquet(self, key: str, path: Path, data: bytes) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._append_table(key, path, pq.read_table(pa.BufferReader(data)))

    def _append_table(self, key: str, path: Path, table: Any) -> None:
        import pyarrow.parquet as pq

        writer = self._parquet.get(key)
        if writer is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            writer = self._parquet[key] = pq.ParquetWriter(path, table.schema)
        writer.write_table(table.cast(writer.schema))

    def close(self) -> None:
        """Finish every file (the merged MEDS code list is written here)."""
        for writer in self._parquet.values():
            writer.close()
        self._parquet.clear()
        if self.fmt == "meds" and self._codes_schema is not None:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pylist(list(self._codes.values()), schema=self._codes_schema)
            path = self.target / self._codes_name
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path)

    def abort(self) -> None:
        """Close open files without finishing them (the caller removes the target)."""
        for writer in self._parquet.values():
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - the files are thrown away anyway
                pass
        self._parquet.clear()
