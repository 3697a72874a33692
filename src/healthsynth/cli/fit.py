"""``healthsynth fit``: learn a generator from a table, or from patient timelines.

Timelines come from tables (``--table``), an OMOP CDM database (``--omop``) or a MEDS folder
(``--meds``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from healthsynth.cli import _fit_steps as steps
from healthsynth.cli._app import app, quiet_transformers, user_errors
from healthsynth.cli._engine import EngineOption, RayAddressOption, WorkersOption, engine_settings
from healthsynth.cli._params import generator_params, setting_names
from healthsynth.cli._privacy import check_dp_flags
from healthsynth.cli._tables import parse_tables
from healthsynth.errors import ModelFolderError, ParameterError

__all__ = ["fit"]

_LLM = "Prompted LLM (--generator prompted-llm)"
_TL = "Timelines (--table)"
#: ``fit`` parameters that are not generator settings: what to read, and the data's roles.
_TABLE_ONLY = {"target": "--target", "sensitive": "--sensitive", "ids": "--id", "rules": "--rules"}
_TIMELINE_ONLY = {
    "key": "--key",
    "time_col": "--time",
    "end": "--end",
    "death": "--death",
    "death_event": "--death-event",
    "sex": "--sex",
    "age": "--age",
}
_DB = "Databases (--omop, --meds)"
_DP = "Differential privacy (tabular-lm, timeline-lm; extra 'dp')"
_NOT_SETTINGS = {
    "data",
    "out_dir",
    "generator",
    "encoding",
    "table",
    "death_value",
    "describe",
    "ranges",
    "omop",
    "meds",
    "engine",
    "ray_address",
    "workers",
    "gpus_per_worker",
    "no_learn_structure",
    "no_calibrate",
    "joint_values",
    "no_time_context",
    *steps.SOURCE_ONLY,
}


@app.command()
@user_errors
def fit(
    data: Annotated[
        Path | None, typer.Argument(help="Training table (.csv or .parquet); or use --table.")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", "-o", help="Model folder to write.")
    ] = None,
    generator: Annotated[
        str | None,
        typer.Option(help="Generator name (default: tabular-lm; timeline-lm with --table)."),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Training epochs (default: chosen from the data size).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    max_time: Annotated[float | None, typer.Option(help="Training time limit in seconds.")] = None,
    target: Annotated[str | None, typer.Option(help="Target column.")] = None,
    sensitive: Annotated[
        str | None, typer.Option(help="Sensitive columns, comma-separated.")
    ] = None,
    ids: Annotated[
        str | None, typer.Option("--id", help="Identifier columns, comma-separated.")
    ] = None,
    base_model: Annotated[
        Path | None, typer.Option(help="Local pretrained causal LM folder to fine-tune.")
    ] = None,
    prior: Annotated[
        Path | None, typer.Option(help="tabular-lm: a prior from 'healthsynth prior build'.")
    ] = None,
    rules: Annotated[
        Path | None,
        typer.Option(help="Clinical rules (YAML) that every sampled row must satisfy."),
    ] = None,
    label_model: Annotated[
        bool | None,
        typer.Option(
            "--label-model/--no-label-model",
            help="tabular-lm: redraw the target from a model fitted on the real rows "
            "(default: on for a categorical target under 3,000 rows; docs/small-data.md).",
        ),
    ] = None,
    label_kind: Annotated[
        str | None, typer.Option(help="tabular-lm: label model: auto, logistic, spline, boosted.")
    ] = None,
    label_share: Annotated[
        float | None,
        typer.Option(help="tabular-lm: share of rows the label model relabels (default 1)."),
    ] = None,
    column_order: Annotated[
        str | None,
        typer.Option(help="tabular-lm: column orders rows keep: learn (default), off, 'a <= b,…'."),
    ] = None,
    relations: Annotated[
        str | None, typer.Option(help="tabular-lm: exact sums rows keep: learn (default) or off.")
    ] = None,
    encoding: Annotated[str, typer.Option(help="Text encoding of a CSV file.")] = "utf-8",
    dp_epsilon: Annotated[
        float | None,
        typer.Option(
            help="Train with DP-SGD spending at most this ε (tabular-lm, timeline-lm; extra 'dp').",
            rich_help_panel=_DP,
        ),
    ] = None,
    dp_delta: Annotated[
        float | None, typer.Option(help="The δ of the budget (default 0.1/n).", rich_help_panel=_DP)
    ] = None,
    dp_max_grad_norm: Annotated[
        float | None,
        typer.Option(help="Per-example gradient clipping norm (default 1).", rich_help_panel=_DP),
    ] = None,
    dp_accountant: Annotated[
        str | None, typer.Option(help="rdp (default) or prv.", rich_help_panel=_DP)
    ] = None,
    table: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=FILE of a multi-table dataset; repeatable. The first is the patients "
            "table, the others event tables (timelines).",
            rich_help_panel=_TL,
        ),
    ] = None,
    key: Annotated[str | None, typer.Option(help="Patient ID column.", rich_help_panel=_TL)] = None,
    time_col: Annotated[
        str | None,
        typer.Option(
            "--time", help="Event time column, days from an index date.", rich_help_panel=_TL
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(help="Patients column: end of follow-up, in days.", rich_help_panel=_TL),
    ] = None,
    death: Annotated[
        str | None,
        typer.Option(
            help="Patients column saying the patient died at the end.", rich_help_panel=_TL
        ),
    ] = None,
    death_value: Annotated[
        str, typer.Option(help="Value of --death that means died.", rich_help_panel=_TL)
    ] = "1",
    death_event: Annotated[
        str | None,
        typer.Option(
            help="Event code that records death (item or table/item); nothing may follow it. "
            "MEDS_DEATH is recognised without this flag.",
            rich_help_panel=_TL,
        ),
    ] = None,
    sex: Annotated[
        str | None,
        typer.Option(help="Patients column: sex (f/m/female/male).", rich_help_panel=_TL),
    ] = None,
    age: Annotated[
        str | None,
        typer.Option(help="Patients column: age in years at day 0.", rich_help_panel=_TL),
    ] = None,
    structure: Annotated[
        Path | None,
        typer.Option(
            help="JSON file of event-log rules replacing the learned ones: once, terminal, "
            "always, at_end (lists of items), max_count, time_since_start, fixed_day "
            "(item -> bound or day).",
            rich_help_panel=_TL,
        ),
    ] = None,
    no_learn_structure: Annotated[
        bool,
        typer.Option(
            "--no-learn-structure",
            help="Do not learn once-only, terminal, always-present, end-of-follow-up and "
            "fixed-day items or per-item bounds from the data (the death event stays terminal).",
            rich_help_panel=_TL,
        ),
    ] = False,
    no_calibrate: Annotated[
        bool,
        typer.Option(
            "--no-calibrate",
            help="Do not match each item's share of patients to the data after training "
            "(per-item offsets on the model's logits; skipped under DP anyway).",
            rich_help_panel=_TL,
        ),
    ] = False,
    joint_values: Annotated[
        bool,
        typer.Option(
            "--joint-values",
            help="One token per (item, value) for items with few distinct values: shorter "
            "timelines.",
            rich_help_panel=_TL,
        ),
    ] = False,
    no_time_context: Annotated[
        bool,
        typer.Option(
            "--no-time-context",
            help="Do not tell the model, at each position, how long before or after day 0 it "
            "is and how much follow-up is left (the format of models before it).",
            rich_help_panel=_TL,
        ),
    ] = False,
    code_map: Annotated[
        str | None,
        typer.Option(
            help="Item-to-code mapping: a packaged name (nafld, pbcseq) or a CSV file. For "
            "prompted-llm, its plausible ranges become the domains of columns named like its "
            "items.",
            rich_help_panel=_TL,
        ),
    ] = None,
    omop: Annotated[
        str | None,
        typer.Option(
            help="OMOP CDM database URL to learn timelines from: postgresql://USER@HOST/DB or "
            "duckdb:///FILE.duckdb (the password is never shown).",
            rich_help_panel=_DB,
        ),
    ] = None,
    omop_schema: Annotated[
        str | None,
        typer.Option(
            help="Schema of the CDM (default: public, or main in DuckDB).", rich_help_panel=_DB
        ),
    ] = None,
    domains: Annotated[
        str | None,
        typer.Option(
            help="Event domains to read, comma-separated: condition, drug, procedure, "
            "measurement, observation (default: every one present).",
            rich_help_panel=_DB,
        ),
    ] = None,
    max_patients: Annotated[
        int | None,
        typer.Option(help="Read a random subset of this many persons.", rich_help_panel=_DB),
    ] = None,
    meds: Annotated[
        Path | None,
        typer.Option(help="MEDS dataset folder to learn timelines from.", rich_help_panel=_DB),
    ] = None,
    endpoint: Annotated[
        str | None,
        typer.Option(help="Base URL of an OpenAI-compatible API.", rich_help_panel=_LLM),
    ] = None,
    llm_model: Annotated[
        str | None, typer.Option(help="Model name the server knows.", rich_help_panel=_LLM)
    ] = None,
    examples: Annotated[
        int | None, typer.Option(help="Real rows per prompt (default 20).", rich_help_panel=_LLM)
    ] = None,
    prompt: Annotated[
        str | None, typer.Option(help="cllm, balanced or zero-shot.", rich_help_panel=_LLM)
    ] = None,
    allow_remote_phi: Annotated[
        bool,
        typer.Option(
            "--allow-remote-phi",
            help="Allow real rows, and data derived from them (every prompt carries categories "
            "and ranges), to go to an endpoint off this machine.",
            rich_help_panel=_LLM,
        ),
    ] = False,
    ranges: Annotated[
        list[str] | None,
        typer.Option(
            "--range",
            help="COLUMN=LOW..HIGH: a declared range (domain) of a numeric or date column; "
            "either side may be left empty; repeatable.",
            rich_help_panel=_LLM,
        ),
    ] = None,
    widen: Annotated[
        float | None,
        typer.Option(
            help="Standard deviations a range drawn from the real rows reaches beyond them "
            "(default 3; 0 keeps their extremes).",
            rich_help_panel=_LLM,
        ),
    ] = None,
    reveal_ranges: Annotated[
        bool,
        typer.Option(
            "--reveal-ranges",
            help="State the real rows' own minimum and maximum in the prompt.",
            rich_help_panel=_LLM,
        ),
    ] = False,
    budget_tokens: Annotated[
        int | None,
        typer.Option(help="Most tokens one fit or sample may use.", rich_help_panel=_LLM),
    ] = None,
    budget_usd: Annotated[
        float | None,
        typer.Option(
            help="Most US dollars one fit or sample may cost (needs --prices).",
            rich_help_panel=_LLM,
        ),
    ] = None,
    prices: Annotated[
        Path | None,
        typer.Option(
            help="Price table, JSON/YAML of model: [usd per 1M in, out].", rich_help_panel=_LLM
        ),
    ] = None,
    rows_per_request: Annotated[
        int | None,
        typer.Option(help="Rows asked for per request (default 10).", rich_help_panel=_LLM),
    ] = None,
    description: Annotated[
        str | None,
        typer.Option(help="What the data are (the prompt's data context).", rich_help_panel=_LLM),
    ] = None,
    describe: Annotated[
        list[str] | None,
        typer.Option(help="COLUMN=MEANING (with units); repeatable.", rich_help_panel=_LLM),
    ] = None,
    response_format: Annotated[
        str | None,
        typer.Option(help="json_schema (default), json_object or text.", rich_help_panel=_LLM),
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Requests in flight (default 4).", rich_help_panel=_LLM)
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Seconds per attempt (default 60).", rich_help_panel=_LLM)
    ] = None,
    api_key_env: Annotated[
        str | None,
        typer.Option(
            help="Environment variable holding the API key (default OPENAI_API_KEY).",
            rich_help_panel=_LLM,
        ),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="Folder for an opt-in response cache.", rich_help_panel=_LLM),
    ] = None,
    audit_log: Annotated[
        Path | None,
        typer.Option(
            help="JSONL audit log (default ./healthsynth-llm-audit.jsonl).", rich_help_panel=_LLM
        ),
    ] = None,
    engine: EngineOption = "local",
    ray_address: RayAddressOption = None,
    workers: WorkersOption = None,
    gpus_per_worker: Annotated[
        float | None,
        typer.Option(
            help="--engine ray: a share of one GPU for each training worker (1: a GPU each, "
            "NCCL; below 1: workers share GPUs and exchange gradients over gloo)."
        ),
    ] = None,
) -> None:
    """Fit a generator on a table (or on patient timelines with --table) and save it.

    With --engine ray, tabular-lm and timeline-lm train data-parallel (PyTorch DDP under Ray
    Train) on --workers workers; the saved model folder is the same kind.
    """
    given = {k: v for k, v in locals().items() if k not in _NOT_SETTINGS}
    quiet_transformers()
    engine, ray_address, workers_n = engine_settings(engine, ray_address, workers)
    if gpus_per_worker is not None and engine != "ray":
        raise ParameterError("--gpus-per-worker applies to --engine ray; leave it out")
    fitter = steps.fitter(engine, ray_address, workers_n, gpus_per_worker or 0.0)
    if out_dir is None:
        raise ParameterError("give the model folder to write with --out")
    given["column_descriptions"] = steps.describe(describe) if describe else None
    given["allow_remote_phi"] = allow_remote_phi or None
    given["domains"] = steps.domains(ranges) if ranges else None
    given["reveal_ranges"] = reveal_ranges or None
    given["structure"] = steps.structure(structure) if structure else None
    given["learn_structure"] = False if no_learn_structure else None
    given["calibrate"] = False if no_calibrate else None
    given["joint_values"] = True if joint_values else None
    given["time_context"] = False if no_time_context else None
    source = steps.source(
        data,
        table,
        omop,
        meds,
        {"omop_schema": omop_schema, "domains": domains, "max_patients": max_patients},
    )
    inputs, generator = _inputs(given, source, data, table, meds, generator)
    from healthsynth.data import check_output_folder, output_lock, record_inputs

    cls, timelines = _generator_class(generator, source, table)
    check_dp_flags(given, generator, cls)
    settings = {k: v for k, v in given.items() if k not in _TABLE_ONLY and k not in _TIMELINE_ONLY}
    params = generator_params(generator, cls, settings)
    if engine == "ray" and generator not in ("tabular-lm", "timeline-lm"):
        raise ParameterError(
            "--engine ray trains the language-model generators (tabular-lm, timeline-lm); fit "
            f"'{generator}' with --engine local"
        )
    if "verbose" in setting_names(cls):
        params["verbose"] = engine == "local"  # Ray workers have no terminal to draw on
    # refuse an output folder we may not write, and hold it, before any (long) training
    with output_lock(out_dir, error=ModelFolderError):
        check_output_folder(
            out_dir,
            action="save the model",
            protected=inputs.values(),
            kind="model",
            error=ModelFolderError,
        )
        if source:
            from healthsynth.cli._omop import read_source

            dataset, learned = read_source(
                omop=omop,
                meds=meds,
                schema=omop_schema,
                domains=domains,
                max_patients=max_patients,
                seed=seed,
            )
            if "code_map" in setting_names(cls):
                params["code_map"] = learned
            model = fitter(cls(**params), dataset)
        elif table:
            model = steps.fit_timelines(cls(**params), inputs, given, death_value, fitter)
        else:
            assert data is not None
            model = steps.fit_table(cls(**params), generator, data, given, encoding, fitter)
        model.save(out_dir)
        record_inputs(out_dir, inputs.values())
    steps.report(model, generator, out_dir, timelines=timelines)


def _inputs(
    given: dict[str, Any],
    source: str | None,
    data: Path | None,
    table: list[str] | None,
    meds: Path | None,
    generator: str | None,
) -> tuple[dict[str, Any], str]:
    """The input files by role, and the generator (a default for the kind of input)."""
    if source:
        steps.refuse(given, _TABLE_ONLY, "does not apply to timelines; leave it out")
        steps.refuse(given, _TIMELINE_ONLY, f"does not apply to {source}: the roles come from it")
        if given.get("code_map") is not None:
            raise ParameterError(
                f"--code-map does not apply to {source}: the codes are learned from it"
            )
        return ({"meds": meds} if meds is not None else {}), generator or "timeline-lm"
    if table:
        if data is not None:
            raise ParameterError(f"give either a data file ({data}) or --table files, not both")
        steps.refuse(given, _TABLE_ONLY, "does not apply to timelines (--table); leave it out")
        return parse_tables(table), generator or "timeline-lm"
    if data is None:
        raise ParameterError("give a data file to fit on, or the tables of a dataset with --table")
    steps.refuse(given, _TIMELINE_ONLY, "goes with --table (multi-table timelines); leave it out")
    return {"data": data}, generator or "tabular-lm"


def _generator_class(
    generator: str, source: str | None, table: list[str] | None
) -> tuple[Any, bool]:
    """The generator's class, and whether it learns timelines; refuses a mismatched input."""
    from healthsynth.generators import registry, timeline_registry

    timelines = generator in timeline_registry.names()
    if source and not timelines:
        raise ParameterError(
            f"generator '{generator}' learns tables; {source} holds patient timelines: use "
            f"a timeline generator ({', '.join(timeline_registry.names())})"
        )
    if timelines and not table and not source:
        raise ParameterError(
            f"generator '{generator}' learns patient timelines: give the tables with --table "
            "NAME=FILE (patients first), --key and --time"
        )
    return (timeline_registry if table or source else registry).get(generator), timelines
