"""Writing one clinical note per patient with any OpenAI-compatible chat endpoint.

Every request goes through :class:`healthsynth.llm.ChatClient`: the PHI gate, the budget, the
opt-in cache and the audit log are the ones ``prompted-llm`` uses. A source that is not proven
synthetic (see :func:`healthsynth.notes.provenance`) counts as real patients: each request then
carries one real record, which the gate refuses to send off this machine without
``allow_remote_phi`` and the audit log records as ``real_rows: 1``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.errors import BudgetError, EndpointError, ParameterError, RemotePHIError
from healthsynth.notes._lexicon import Lexicon, load_lexicon
from healthsynth.notes._patients import PatientSource, iter_chunks, read_patients
from healthsynth.notes._prompts import kind_template, render_prompt

__all__ = ["DEFAULT_AUDIT_LOG", "write_notes"]

#: where requests are logged unless ``audit_log`` says otherwise (as for prompted-llm)
DEFAULT_AUDIT_LOG = "healthsynth-llm-audit.jsonl"


def _check_output(output: Path) -> None:
    if output.suffix.lower() != ".jsonl":
        raise ParameterError(
            f"the notes file {output} must end in .jsonl (one JSON object per note and line)"
        )
    if output.is_dir():
        raise ParameterError(f"the notes file {output} is a folder; give a .jsonl file path")


def _check_ownership(output: Path, source: Any, overwrite: bool) -> None:
    """Refuse to write over the source, or over a file healthsynth did not write."""
    from healthsynth.data import check_output_file

    protected: list[Path] = []
    if isinstance(source, (str, Path)):
        src = Path(source)
        protected = [p for p in src.rglob("*") if p.is_file()] if src.is_dir() else [src]
    check_output_file(output, action="write the notes", protected=protected, overwrite=overwrite)


def _check_count(name: str, value: Any, low: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ParameterError(f"{name} must be a whole number >= {low}; got {value!r}")


def _warn(message: str, stacklevel: int = 3) -> None:
    """Warn the caller of :func:`write_notes` (``stacklevel`` counts from this function)."""
    import warnings

    from healthsynth.generators._base import HealthsynthWarning

    warnings.warn(message, HealthsynthWarning, stacklevel=stacklevel)


def _gate(client: Any, src: PatientSource, source: Any) -> None:
    """Refuse real patients for a remote endpoint, with a sentence about notes."""
    if src.synthetic:
        return
    try:
        client.check_gate(1)
    except RemotePHIError:
        raise RemotePHIError(
            f"{src.path or 'the patients given'} is not proven synthetic ({src.evidence}), so its "
            f"patients count as real and the prompts would send them to {client.endpoint}, which "
            "is not this machine; write the notes from the output of `healthsynth sample` with "
            "its run record, use a local endpoint, or pass --allow-remote-phi "
            "(allow_remote_phi=True) if your data governance allows it"
        ) from None


def write_notes(
    source: str | Path | pd.DataFrame | Any,
    output: str | Path,
    *,
    endpoint: str,
    llm_model: str,
    kind: str = "discharge summary",
    model: str | Path | None = None,
    key: str | None = None,
    time_column: str | None = None,
    id_column: str | None = None,
    max_patients: int | None = None,
    max_events: int = 100,
    description: str | None = None,
    lexicon: str | Path | Lexicon | None = None,
    words: int = 300,
    temperature: float = 0.7,
    max_tokens: int = 1024,
    send_seed: bool = True,
    concurrency: int = 4,
    timeout: float = 120.0,
    max_retries: int = 3,
    api_key_env: str = "OPENAI_API_KEY",
    allow_remote_phi: bool = False,
    budget_tokens: int | None = None,
    budget_usd: float | None = None,
    prices: str | Path | Mapping[str, Any] | None = None,
    cache_dir: str | Path | None = None,
    audit_log: str | Path | None = DEFAULT_AUDIT_LOG,
    check_model: bool = True,
    seed: int = 0,
    encoding: str = "utf-8",
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write one note per patient of ``source`` to ``output`` (JSONL) and its run record.

    Each note is written from that patient's row (a table) or patients row and events (a
    timeline folder) only. ``output`` and ``OUTPUT.run.json`` appear only when complete; an
    endpoint error, an empty reply or a refused request leaves nothing behind. When the budget
    runs out, the notes written so far are kept, with a warning.

    Parameters
    ----------
    source
        A CSV or Parquet file (one patient per row), a timeline folder (a patients table and
        event tables), a DataFrame or a :class:`~healthsynth.data.Dataset`. Only the output of
        ``healthsynth sample`` with its run record counts as synthetic; anything else counts as
        real patients, whose notes need a local endpoint or ``allow_remote_phi``.
    output
        The notes file (``.jsonl``): one object per patient with ``patient_id``, ``kind``,
        ``note``, ``finish_reason``, the tokens, and ``patient`` (the record the note was
        written from).
    endpoint, llm_model
        The chat-completions base URL and the model name.
    kind
        ``discharge summary``, ``progress note`` or ``radiology report`` (templates in
        ``healthsynth/notes/templates``).
    model, key, time_column, id_column, max_events
        How to read the source (see :func:`healthsynth.notes.read_patients`).
    max_patients
        Write notes for the first this many patients only.
    description
        What the patients are (``adults with primary biliary cholangitis``), for the prompt.
    lexicon
        Extra concepts (a YAML file like the packaged ``lexicon.yaml``).
    words
        The length asked for, in words.
    temperature, max_tokens, send_seed, concurrency, timeout, max_retries, api_key_env,
    allow_remote_phi, budget_tokens, budget_usd, prices, cache_dir, audit_log
        As for :class:`healthsynth.llm.ChatClient`.
    check_model
        Ask the server first whether it serves ``llm_model``.
    seed
        Seed of the per-request seeds.
    encoding
        Text encoding of CSV files.
    overwrite
        Replace an existing ``output`` that healthsynth did not write (never the source).

    Returns
    -------
    dict
        The run record (also written to ``OUTPUT.run.json``).
    """
    from healthsynth.llm import ChatClient

    started = time.perf_counter()
    template = kind_template(kind)
    output = Path(output)
    _check_output(output)
    _check_ownership(output, source, overwrite)
    _check_count("max_patients", max_patients, 1)
    _check_count("max_events", max_events, 0)
    _check_count("words", words, 10)
    _check_count("max_tokens", max_tokens, 16)
    lex = load_lexicon(lexicon)
    src = read_patients(
        source,
        model=model,
        key=key,
        time=time_column,
        id_column=id_column,
        max_events=max_events,
        encoding=encoding,
    )
    patients = src.patients[:max_patients] if max_patients else src.patients
    client = ChatClient(
        endpoint=endpoint,
        model=llm_model,
        api_key_env=api_key_env,
        timeout=timeout,
        max_retries=max_retries,
        concurrency=concurrency,
        response_format="text",
        send_seed=send_seed,
        cache_dir=cache_dir,
        audit_log=audit_log,
        prices=prices,
        budget_tokens=budget_tokens,
        budget_usd=budget_usd,
        allow_remote_phi=allow_remote_phi,
    )
    prompt = {"kind": kind, "lexicon": lex, "description": description, "words": words}
    requests = _requests(src, patients, prompt, max_tokens, temperature, seed)
    try:
        _check_before_sending(client, src, source, requests[0], check_model)
        notes = _write_all(client, patients, requests, template)
    finally:
        client.close()
    if not notes.lines:
        raise BudgetError(
            "the budget ran out before the first note was written; raise --budget-tokens or "
            "--budget-usd"
        )
    record = _run_record(
        src,
        notes,
        template=template,
        endpoint=client.endpoint,
        llm_model=llm_model,
        patients=len(patients),
        output=output,
        seed=seed,
        settings={
            "words": words,
            "temperature": temperature,
            "max_tokens": max_tokens,
            "max_events": max_events,
            "concurrency": concurrency,
        },
        audit_log=audit_log,
        started=started,
        usage=client.usage.to_record(),
    )
    _save(output, notes.lines, record)
    if notes.stopped_by == "budget":
        _warn(
            f"the budget ran out: notes for {len(notes.lines)} of {len(patients)} patients written"
        )
    if notes.truncated:
        _warn(f"{notes.truncated} notes were cut off at --max-tokens ({max_tokens}); raise it")
    return record


def _requests(
    src: PatientSource,
    patients: list[Any],
    prompt: Mapping[str, Any],
    max_tokens: int,
    temperature: float,
    seed: int,
) -> list[Any]:
    """One request per patient; a source not proven synthetic counts as one real row each."""
    from healthsynth.llm import ChatRequest

    real = not src.synthetic
    rng = np.random.default_rng(seed)
    return [
        ChatRequest(
            messages=render_prompt(p, **prompt),
            max_tokens=int(max_tokens),
            temperature=float(temperature),
            seed=int(rng.integers(0, 2**31 - 1)),
            real_rows=1 if real else 0,
            columns=src.columns if real else [],
            schema_columns=src.columns,
            purpose="note",
        )
        for p in patients
    ]


def _check_before_sending(
    client: Any, src: PatientSource, source: Any, first: Any, check_model: bool
) -> None:
    """What is checked before any note is asked for: the PHI gate, the budget, the model."""
    _gate(client, src, source)
    if not src.synthetic:
        _warn(
            f"{src.path or 'the patients given'} is not proven synthetic ({src.evidence}); "
            "its patients are treated as real, and the notes are derived from real records",
            stacklevel=4,  # from write_notes, as the other warnings
        )
    client.check_budget_for(first)
    if check_model:
        client.check_model()


@dataclass
class _Notes:
    """The JSONL lines written, why writing stopped, and how many notes were cut off."""

    lines: list[str] = field(default_factory=list)
    stopped_by: str = "all patients"
    truncated: int = 0


def _write_all(client: Any, patients: list[Any], requests: list[Any], template: str) -> _Notes:
    """Send the requests in chunks and collect the notes, until done or the budget runs out."""
    notes = _Notes()
    for chunk in iter_chunks(list(range(len(requests))), 4 * client.concurrency):
        replies = client.complete_all([requests[i] for i in chunk])
        budget_hit = False
        for i, reply in zip(chunk, replies, strict=True):
            if reply is None or isinstance(reply, BudgetError):
                budget_hit = True
                continue
            if isinstance(reply, BaseException):
                raise reply
            if not reply.text.strip():
                raise EndpointError(
                    f"the LLM endpoint {client.endpoint} returned an empty note for patient "
                    f"{patients[i].id} (finish reason {reply.finish_reason!r}); check that "
                    "--llm-model is a chat model that writes text and that --max-tokens "
                    "leaves room for the reply"
                )
            notes.truncated += int(reply.truncated)
            notes.lines.append(_note_line(patients[i], requests[i], reply, template))
        if budget_hit:
            notes.stopped_by = "budget"
            break
    return notes


def _note_line(patient: Any, request: Any, reply: Any, template: str) -> str:
    """The JSONL line of one note."""
    return json.dumps(
        {
            "patient_id": patient.id,
            "kind": template.removesuffix(".j2").replace("_", " "),
            "note": reply.text.strip(),
            "finish_reason": reply.finish_reason,
            "seed": request.seed,
            "tokens_in": reply.tokens_in,
            "tokens_out": reply.tokens_out,
            "cached": reply.cached,
            "patient": patient.to_dict(),
        },
        ensure_ascii=False,
        default=str,
    )


def _run_record(
    src: PatientSource,
    notes: _Notes,
    *,
    template: str,
    endpoint: str,
    llm_model: str,
    patients: int,
    output: Path,
    seed: int,
    settings: dict[str, Any],
    audit_log: str | Path | None,
    started: float,
    usage: dict[str, Any],
) -> dict[str, Any]:
    """The run record (``OUTPUT.run.json``), less the size of the notes file."""
    from healthsynth.generators._folder import peak_rss_mb, runtime_info

    return {
        "command": "notes",
        "source": src.path,
        "layout": src.layout,
        "synthetic": src.synthetic,
        "evidence": src.evidence,
        "kind": template.removesuffix(".j2").replace("_", " "),
        "endpoint": endpoint,
        "llm_model": llm_model,
        "patients": patients,
        "notes": len(notes.lines),
        "truncated_notes": notes.truncated,
        "stopped_by": notes.stopped_by,
        "output": str(output),
        "seed": seed,
        "settings": settings,
        "audit_log": None if audit_log is None else str(Path(audit_log).resolve()),
        "seconds": round(time.perf_counter() - started, 3),
        "peak_rss_mb": peak_rss_mb(),
        "runtime": runtime_info(),
        **usage,
    }


def _save(output: Path, lines: list[str], record: dict[str, Any]) -> None:
    """Write the notes, then the run record with the notes file's size (each atomically)."""
    from healthsynth.data import atomic_path

    with atomic_path(output) as tmp:
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    record["output_bytes"] = output.stat().st_size
    run_path = output.with_name(output.name + ".run.json")
    with atomic_path(run_path) as tmp:
        tmp.write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
