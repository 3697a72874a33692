"""``healthsynth datasets``: list and export the real example health datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from healthsynth.cli._app import datasets_app, out, say, user_errors, write_run_record
from healthsynth.errors import ParameterError

__all__ = ["datasets_export", "datasets_export_timelines", "datasets_list"]


@datasets_app.command("list")
@user_errors
def datasets_list(
    package: Annotated[str | None, typer.Option(help="List every item of this R package.")] = None,
) -> None:
    """List the curated health datasets (or all items of an R package)."""
    from healthsynth.data import list_datasets

    table = Table("name", "description")
    for _, row in list_datasets(package).iterrows():
        table.add_row(row["name"], row["description"])
    out.print(table)


@datasets_app.command("export-timelines")
@user_errors
def datasets_export_timelines(
    name: Annotated[str, typer.Argument(help="A real cohort: nafld, pbcseq or mgus2.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the tables.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    max_patients: Annotated[
        int | None, typer.Option(help="Keep a random subset of this many patients.")
    ] = None,
) -> None:
    """Write a real longitudinal cohort's tables (patients, events, labs) to a folder."""
    from healthsynth.data import check_output_folder, load_timelines

    if fmt not in ("csv", "parquet"):
        raise ParameterError(f"--format must be csv or parquet; got '{fmt}'")
    check_output_folder(output, action="write the tables", kind="dataset")
    ds = load_timelines(name, max_patients=max_patients)
    ds.write(output, fmt=fmt)  # type: ignore[arg-type]
    listed = ", ".join(f"{n} ({len(df):,} rows)" for n, df in ds.tables.items())
    say(f"wrote {name} to {output}/: {listed}")


@datasets_app.command("export")
@user_errors
def datasets_export(
    name: Annotated[str, typer.Argument(help="PACKAGE/ITEM, e.g. survival/nafld1.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output file (.csv or .parquet).")],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing file.")
    ] = False,
) -> None:
    """Write a dataset to a CSV or Parquet file."""
    from healthsynth.data import check_output_file, export_dataset, table_format

    table_format(output, "output file")
    check_output_file(output, action="write the dataset", overwrite=overwrite)
    export_dataset(name, output)
    write_run_record(output, {"command": "datasets export", "dataset": name})
    say(f"wrote {name} to {output}")
