"""``healthsynth notes``: one clinical note per synthetic patient, a thin layer over write_notes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from healthsynth.cli._app import app, say, user_errors

__all__ = ["notes"]

_LLM = "LLM endpoint"
_SRC = "Timeline folders"


@app.command()
@user_errors
def notes(
    source: Annotated[
        Path,
        typer.Argument(
            help="Synthetic patients: a table (.csv, .parquet) or a timeline folder written by "
            "'sample'."
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Notes file to write (.jsonl).")],
    endpoint: Annotated[
        str, typer.Option(help="Base URL of an OpenAI-compatible API.", rich_help_panel=_LLM)
    ],
    llm_model: Annotated[
        str, typer.Option(help="Model name as the server knows it.", rich_help_panel=_LLM)
    ],
    kind: Annotated[
        str,
        typer.Option(help="discharge summary, progress note or radiology report."),
    ] = "discharge summary",
    description: Annotated[
        str | None, typer.Option(help="What the patients are, for the prompt.")
    ] = None,
    max_patients: Annotated[
        int | None, typer.Option(help="Notes for the first this many patients only.")
    ] = None,
    words: Annotated[int, typer.Option(help="Length asked for, in words.")] = 300,
    id_column: Annotated[
        str | None, typer.Option(help="Identifier column of a table (never sent).")
    ] = None,
    lexicon: Annotated[
        Path | None, typer.Option(help="Extra clinical concepts (YAML, like lexicon.yaml).")
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(help="Model folder that sampled the timelines.", rich_help_panel=_SRC),
    ] = None,
    key: Annotated[
        str | None, typer.Option(help="Patient ID column (without --model).", rich_help_panel=_SRC)
    ] = None,
    time_col: Annotated[
        str | None,
        typer.Option("--time", help="Event time column (without --model).", rich_help_panel=_SRC),
    ] = None,
    max_events: Annotated[
        int, typer.Option(help="Most events of one patient in a prompt.", rich_help_panel=_SRC)
    ] = 100,
    temperature: Annotated[float, typer.Option(rich_help_panel=_LLM)] = 0.7,
    max_tokens: Annotated[
        int, typer.Option(help="Most tokens per note.", rich_help_panel=_LLM)
    ] = 1024,
    concurrency: Annotated[int, typer.Option(help="Requests in flight.", rich_help_panel=_LLM)] = 4,
    timeout: Annotated[
        float, typer.Option(help="Seconds per attempt.", rich_help_panel=_LLM)
    ] = 120.0,
    max_retries: Annotated[int, typer.Option(rich_help_panel=_LLM)] = 3,
    api_key_env: Annotated[
        str, typer.Option(help="Variable holding the API key.", rich_help_panel=_LLM)
    ] = "OPENAI_API_KEY",
    allow_remote_phi: Annotated[
        bool,
        typer.Option(
            "--allow-remote-phi",
            help="Allow patients not proven synthetic to go to an endpoint off this machine.",
            rich_help_panel=_LLM,
        ),
    ] = False,
    budget_tokens: Annotated[
        int | None, typer.Option(help="Most tokens this run may use.", rich_help_panel=_LLM)
    ] = None,
    budget_usd: Annotated[
        float | None, typer.Option(help="Most US dollars this run may cost.", rich_help_panel=_LLM)
    ] = None,
    prices: Annotated[
        Path | None, typer.Option(help="Price table (JSON/YAML).", rich_help_panel=_LLM)
    ] = None,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Response cache folder.", rich_help_panel=_LLM)
    ] = None,
    audit_log: Annotated[
        Path, typer.Option(help="JSONL log of every request.", rich_help_panel=_LLM)
    ] = Path("healthsynth-llm-audit.jsonl"),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    encoding: Annotated[str, typer.Option(help="Text encoding of CSV files.")] = "utf-8",
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Replace an existing notes file healthsynth did not write."
        ),
    ] = False,
) -> None:
    """Write one clinical note per synthetic patient with an LLM (notes.jsonl + its run record)."""
    from healthsynth.notes import write_notes

    record = write_notes(
        source,
        output,
        endpoint=endpoint,
        llm_model=llm_model,
        kind=kind,
        model=model,
        key=key,
        time_column=time_col,
        id_column=id_column,
        max_patients=max_patients,
        max_events=max_events,
        description=description,
        lexicon=lexicon,
        words=words,
        temperature=temperature,
        max_tokens=max_tokens,
        concurrency=concurrency,
        timeout=timeout,
        max_retries=max_retries,
        api_key_env=api_key_env,
        allow_remote_phi=allow_remote_phi,
        budget_tokens=budget_tokens,
        budget_usd=budget_usd,
        prices=prices,
        cache_dir=cache_dir,
        audit_log=audit_log,
        seed=seed,
        encoding=encoding,
        overwrite=overwrite,
    )
    money = f", ${record['cost_usd']:.4f}" if record.get("cost_usd") is not None else ""
    origin = "synthetic" if record["synthetic"] else "NOT proven synthetic"
    say(
        f"wrote {record['notes']:,} {record['kind']} notes ({origin} patients) to {output} in "
        f"{record['seconds']:.1f} s: {record['requests']} requests "
        f"({record['cached_requests']} from the cache), {record['tokens_in']:,} tokens in, "
        f"{record['tokens_out']:,} out{money}; audit log {record['audit_log']}"
    )
