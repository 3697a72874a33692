"""``healthsynth sample``: synthetic rows (or patients) from a model folder, streamed to disk."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from healthsynth.cli._app import TrustPickleOption, app, err, quiet_transformers, say, user_errors
from healthsynth.cli._engine import EngineOption, RayAddressOption, WorkersOption, engine_settings
from healthsynth.errors import ParameterError

__all__ = ["sample"]

#: Most rows (or patients) one run writes.
MAX_N = 10**10
_FORMATS = ("csv", "parquet", "omop", "meds", "fhir")


@app.command()
@user_errors
def sample(
    model_dir: Annotated[Path, typer.Argument(help="Model folder written by 'fit'.")],
    n: Annotated[int, typer.Option("-n", help="Number of rows (patients, for timelines).")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Output file (.csv or .parquet); a folder for timelines."
        ),
    ] = None,
    condition: Annotated[
        list[str] | None,
        typer.Option(
            help="COLUMN=VALUE, COLUMN>=NUMBER, COLUMN=LOW..HIGH, or has=ITEM for timelines; "
            "repeatable."
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="Timelines only: csv, parquet, omop, meds or fhir."),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Replace an existing output file that healthsynth did not write (never an "
            "input of the model).",
        ),
    ] = False,
    csv_safe: Annotated[
        bool,
        typer.Option(
            "--csv-safe",
            help="CSV output: put a ' before text cells that a spreadsheet would run as a "
            "formula (starting with =, +, -, @, a tab or a carriage return).",
        ),
    ] = False,
    trust_pickle: TrustPickleOption = False,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Timelines: write OMOP CDM tables into this database instead of a folder "
            "(postgresql://USER@HOST/DB or duckdb:///FILE.duckdb; with --format omop).",
        ),
    ] = None,
    omop_schema: Annotated[
        str | None,
        typer.Option(help="With --to: the schema to create (default: public, or main in DuckDB)."),
    ] = None,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="With --to: drop and recreate the OMOP tables in a schema that holds tables.",
        ),
    ] = False,
    budget_tokens: Annotated[
        int | None,
        typer.Option(help="prompted-llm: most tokens this run may use (default: the fit's)."),
    ] = None,
    budget_usd: Annotated[
        float | None,
        typer.Option(help="prompted-llm: most US dollars this run may cost (default: the fit's)."),
    ] = None,
    endpoint: Annotated[
        str | None,
        typer.Option(
            help="prompted-llm: the endpoint to sample from (default: the fit's, when it is on "
            "this machine; a remote one must be given again)."
        ),
    ] = None,
    allow_remote_phi: Annotated[
        bool,
        typer.Option(
            "--allow-remote-phi",
            help="prompted-llm: allow real rows and data derived from them to go to an endpoint "
            "off this machine (never read from the model folder).",
        ),
    ] = False,
    api_key_env: Annotated[
        str | None,
        typer.Option(
            help="prompted-llm: environment variable holding the API key (default "
            "OPENAI_API_KEY; never read from the model folder)."
        ),
    ] = None,
    audit_log: Annotated[
        Path | None,
        typer.Option(
            help="prompted-llm: JSONL audit log (default ./healthsynth-llm-audit.jsonl; never "
            "read from the model folder)."
        ),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="prompted-llm: folder for an opt-in response cache."),
    ] = None,
    herding: Annotated[
        int | None,
        typer.Option(
            help="tabular-lm: rows drawn per row written, the -n kept by kernel herding (1: "
            "independent draws; default: the model's setting, 'auto')."
        ),
    ] = None,
    engine: EngineOption = "local",
    ray_address: RayAddressOption = None,
    workers: WorkersOption = None,
    block_size: Annotated[
        int | None,
        typer.Option(
            help="Rows (patients) per block (default: 50,000 rows, 5,000 patients); with "
            "--engine ray, the unit of work of one worker."
        ),
    ] = None,
) -> None:
    """Sample synthetic rows (or patients) from a model folder, streamed to disk in blocks.

    With --engine ray, Ray workers sample the blocks (the same output for any --workers at the
    same --seed); a table goes to a folder of Parquet shards, or to one .parquet/.csv file.
    """
    quiet_transformers()
    engine, ray_address, workers_n = engine_settings(engine, ray_address, workers)
    if block_size is not None and block_size < 1:
        raise ParameterError(f"--block-size must be a positive whole number; got {block_size}")
    from healthsynth.generators import Generator, timeline_registry
    from healthsynth.generators.folders import check_folder

    # everything that can be refused is refused before the (slower) model load
    Generator._check_n(n)
    if n > MAX_N:
        raise ParameterError(f"-n {n} is more than one run writes (at most {MAX_N:,}); split it")
    _, meta = check_folder(model_dir)
    timelines = meta.get("data_kind") == "timelines" or meta.get("generator") in (
        timeline_registry.names()
    )
    conditions = _conditions(condition or [], timelines=timelines)
    if to is not None or omop_schema is not None or replace:
        from healthsynth.cli._omop import check_database_output, sample_to_database
        from healthsynth.generators import load_generator

        check_database_output(to, output, fmt, timelines, overwrite or csv_safe)
        if engine == "ray":
            raise ParameterError("--to writes through one process; leave out --engine ray")
        assert to is not None
        sample_to_database(
            load_generator(model_dir, trust_pickle=trust_pickle),
            model_dir=model_dir,
            n=n,
            url=to,
            schema=omop_schema,
            replace=replace,
            conditions=conditions,
            seed=seed,
        )
        return
    if output is None:
        raise ParameterError(
            "give the output with --output (or, for timelines, a database with --to)"
        )
    # sampling settings from this command only: prompted-llm's (where data go), tabular-lm's herding
    llm = _llm_flags(
        budget_tokens, budget_usd, endpoint, allow_remote_phi, api_key_env, audit_log, cache_dir
    ) + [("--herding", "herding", herding)]
    if engine == "ray":
        _refuse_on_ray(csv_safe, llm)
        _sample_on_ray(
            model_dir,
            n,
            output,
            trust_pickle,
            conditions,
            seed,
            fmt,
            overwrite,
            workers_n,
            ray_address,
            block_size,
        )
        return
    _sample_locally(
        model_dir,
        n,
        output,
        timelines=timelines,
        fmt=fmt,
        conditions=conditions,
        seed=seed,
        overwrite=overwrite,
        csv_safe=csv_safe,
        trust_pickle=trust_pickle,
        block_size=block_size,
        llm=llm,
    )


def _llm_flags(
    budget_tokens: int | None,
    budget_usd: float | None,
    endpoint: str | None,
    allow_remote_phi: bool,
    api_key_env: str | None,
    audit_log: Path | None,
    cache_dir: Path | None,
) -> list[tuple[str, str, Any]]:
    """The prompted-llm options given: (flag, the model's setting, value); None: not given."""
    return [
        ("--budget-tokens", "budget_tokens", budget_tokens),
        ("--budget-usd", "budget_usd", budget_usd),
        ("--endpoint", "endpoint", endpoint),
        ("--allow-remote-phi", "allow_remote_phi", allow_remote_phi or None),
        ("--api-key-env", "api_key_env", api_key_env),
        ("--audit-log", "audit_log", None if audit_log is None else str(audit_log)),
        ("--cache-dir", "cache_dir", None if cache_dir is None else str(cache_dir)),
    ]


def _owner(param: str) -> str:
    """The generator whose sampling setting ``param`` is (the others are prompted-llm's)."""
    return "tabular-lm" if param == "herding" else "prompted-llm"


def _refuse_on_ray(csv_safe: bool, llm: list[tuple[str, str, Any]]) -> None:
    """Refuse the options that only ``--engine local`` applies."""
    if csv_safe:
        raise ParameterError(
            "--csv-safe is applied by --engine local only; sample with --engine local, or "
            "leave it out"
        )
    for flag, param, value in llm:
        if value is not None:
            raise ParameterError(f"{flag} applies to {_owner(param)} with --engine local")


def _sample_locally(
    model_dir: Path,
    n: int,
    output: Path,
    *,
    timelines: bool,
    fmt: str | None,
    conditions: dict[str, Any],
    seed: int | None,
    overwrite: bool,
    csv_safe: bool,
    trust_pickle: bool,
    block_size: int | None,
    llm: list[tuple[str, str, Any]],
) -> None:
    """``sample --engine local``: the model samples in this process, streamed to ``output``."""
    from healthsynth.data import add_to_manifest, atomic_path, output_lock, protected_files
    from healthsynth.generators import load_generator

    fmt = _check_output(output, fmt, timelines, protected_files(model_dir), overwrite)
    if csv_safe and (fmt or output.suffix.lower().lstrip(".")) != "csv":
        raise ParameterError(
            f"--csv-safe applies to CSV output; {output} is written as "
            f"{fmt or 'Parquet'}, which a spreadsheet does not run as formulas: leave it out"
        )
    sized = {"block_size": block_size} if block_size is not None else {}
    with output_lock(output):
        model = load_generator(model_dir, trust_pickle=trust_pickle)
        # the settings that decide where data go come from this command, never from the folder
        for flag, param, value in llm:
            if value is None:
                continue
            if param not in model.get_params():
                raise ParameterError(f"{flag} applies to {_owner(param)} models; leave it out")
            setattr(model, param, value)
        start = time.perf_counter()
        if timelines:
            model.sample_to_folder(
                n,
                output,
                fmt=fmt,
                conditions=conditions or None,
                seed=seed,
                csv_safe=csv_safe,
                **sized,
            )
        else:
            model.sample_to_file(
                n, output, conditions=conditions or None, seed=seed, csv_safe=csv_safe, **sized
            )
        took = time.perf_counter() - start
        run = _run_record(model, model_dir, n, output, fmt, conditions, seed, took, timelines)
        run_path = output / "run.json" if timelines else output.with_name(output.name + ".run.json")
        with atomic_path(run_path) as tmp:
            tmp.write_text(json.dumps(run, indent=1, default=str), encoding="utf-8")
        if timelines:
            add_to_manifest(output, [run_path])
    _summary(run, output, timelines)


def _sample_on_ray(
    model_dir: Path,
    n: int,
    output: Path,
    trust_pickle: bool,
    conditions: dict[str, Any],
    seed: int | None,
    fmt: str | None,
    overwrite: bool,
    workers: int,
    address: str | None,
    block_size: int | None,
) -> None:
    """``sample --engine ray``: blocks on Ray workers (healthsynth.scale.sample)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from healthsynth.data import protected_files
    from healthsynth.scale import sample as scale_sample

    with Progress(
        TextColumn("blocks", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[workers]}", markup=False),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("blocks", total=None, workers="")

        def progress(p: Any) -> None:
            bar.update(
                task, total=p.blocks, completed=p.blocks_done, workers=f"{p.workers_alive} workers"
            )

        run = scale_sample(
            model_dir,
            n,
            output,
            engine="ray",
            workers=workers,
            address=address,
            seed=seed,
            conditions=conditions or None,
            fmt=fmt,
            block_size=block_size,
            overwrite=overwrite,
            protected=protected_files(model_dir),
            progress=progress,
            trust_pickle=trust_pickle,
        )
    rec = run.record
    unit, took = rec["unit"], rec["seconds"]
    lost = (
        f"; {rec['workers_lost']} worker(s) lost and their blocks redone"
        if rec["workers_lost"]
        else ""
    )
    say(
        f"wrote {n:,} {unit} to {output} ({rec['format']}, {rec['blocks']} blocks on "
        f"{rec['workers']} Ray workers) in {took:.1f} s ({n / max(took, 1e-9):,.0f} {unit}/s)"
        f"{lost}"
    )


def _check_output(
    output: Path, fmt: str | None, timelines: bool, protected: list[Any], overwrite: bool
) -> str | None:
    """Refuse an output this run may not write; return the format."""
    from healthsynth.data import check_output_file, check_output_folder, table_format

    if timelines:
        fmt = fmt or "csv"
        if fmt not in _FORMATS:
            raise ParameterError(f"--format '{fmt}' is not one of {', '.join(_FORMATS)}")
        if output.exists() and not output.is_dir():
            raise ParameterError(f"--output {output} is a file; timelines are written to a folder")
        check_output_folder(
            output,
            action="write the synthetic patients",
            protected=protected,
            kind="timelines sample",
        )
        return fmt
    if fmt is not None:
        raise ParameterError(
            "--format applies to timeline models; for a table the output file's suffix "
            "(.csv or .parquet) sets the format"
        )
    table_format(output, "output file")
    check_output_file(
        output, action="write the synthetic rows", protected=protected, overwrite=overwrite
    )
    return None


def _conditions(items: list[str], *, timelines: bool) -> dict[str, Any]:
    """Conditions from the command line (for timelines also ``has=ITEM``, repeatable)."""
    from healthsynth.generators import parse_condition_strings

    if not timelines:
        return parse_condition_strings(items)
    has = [i.split("=", 1)[1].strip() for i in items if i.strip().startswith("has=")]
    conditions = parse_condition_strings([i for i in items if not i.strip().startswith("has=")])
    if has:
        conditions["has"] = has
    return conditions


def _run_record(
    model: Any,
    model_dir: Path,
    n: int,
    output: Path,
    fmt: str | None,
    conditions: dict[str, Any],
    seed: int | None,
    took: float,
    timelines: bool,
) -> dict[str, Any]:
    """What was sampled, how, and what it cost (written next to the output)."""
    from healthsynth.generators.folders import peak_rss_mb, runtime_info

    llm = dict(getattr(model, "sampling_record_", None) or {})
    if llm:
        n = int(llm.get("rows_returned", n))
    run: dict[str, Any] = {
        "command": "sample",
        "model": str(model_dir),
        "n": n,
        "unit": "patients" if timelines else "rows",
        "format": fmt,
        "conditions": conditions,
        "seed": seed,
        "output": str(output),
        "output_bytes": None if timelines else output.stat().st_size,
        "seconds": round(took, 3),
        "rows_per_second": round(n / max(took, 1e-9), 1),
        "peak_rss_mb": peak_rss_mb(),
        "runtime": runtime_info(),
    }
    threads = getattr(model, "sampling_threads_", None)  # the LM generators' thread choice
    if threads:
        run["threads"] = dict(threads)
    herding = getattr(model, "sampling_herding_", None)  # tabular-lm: rows drawn per row kept
    if herding:
        run["herding"] = dict(herding)
    if llm:
        run["llm"] = llm
        for k in ("tokens_in", "tokens_out", "cost_usd", "requests", "cached_requests"):
            run[k] = llm.get(k)
        run["llm_seconds"] = llm.get("llm_seconds")
    return run


def _summary(run: dict[str, Any], output: Path, timelines: bool) -> None:
    n, unit, took = run["n"], run["unit"], run["seconds"]
    where = f"{output}/ ({run['format']})" if timelines else str(output)
    say(f"wrote {n:,} {unit} to {where} in {took:.1f} s ({n / max(took, 1e-9):,.0f} {unit}/s)")
    llm = run.get("llm")
    if not llm:
        return
    cur = llm.get("curation", {})
    money = f", ${llm['cost_usd']:.4f}" if llm.get("cost_usd") is not None else ""
    say(
        f"{llm['requests']} requests ({llm['cached_requests']} from the cache), "
        f"{llm['tokens_in']:,} tokens in, {llm['tokens_out']:,} out{money}; of "
        f"{llm['rows_parsed']:,} rows parsed: {llm['rows_invalid']:,} outside the schema "
        f"({llm.get('rows_out_of_domain', 0):,} outside a column's domain), "
        f"{llm['off_condition']:,} off the conditions, {llm['rule_violations']:,} against the "
        f"rules, {llm['copies_of_examples'] + llm['copies_of_training']:,} copies of real "
        f"rows, {cur.get('hard', 0):,} dropped by curation; audit log {llm['audit_log']}"
    )
