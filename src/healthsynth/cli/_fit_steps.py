"""The steps of ``healthsynth fit`` besides its command line.

Where the data come from, how the model is fitted (in this process or on Ray Train), the
closing summary, and the small parsers of some flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from healthsynth.cli._app import say, split_names
from healthsynth.cli._privacy import dp_line
from healthsynth.cli._tables import read_dataset, scalar
from healthsynth.errors import ParameterError

__all__ = [
    "SOURCE_ONLY",
    "bound",
    "describe",
    "domains",
    "fit_table",
    "fit_timelines",
    "fitter",
    "refuse",
    "report",
    "source",
    "structure",
]

#: what to read from a database or MEDS folder (not generator settings)
SOURCE_ONLY = {
    "omop_schema": "--omop-schema",
    "domains": "--domains",
    "max_patients": "--max-patients",
}


def source(
    data: Path | None,
    table: list[str] | None,
    omop: str | None,
    meds: Path | None,
    options: dict[str, Any],
) -> str | None:
    """What ``--omop`` / ``--meds`` name, in words (None without them); refuses mixtures."""
    if omop is not None and meds is not None:
        raise ParameterError("give either --omop or --meds, not both")
    if omop is None and meds is None:
        for param, flag in SOURCE_ONLY.items():
            if options[param] is not None:
                raise ParameterError(f"{flag} goes with --omop or --meds; leave it out")
        return None
    flag = "--omop" if omop is not None else "--meds"
    if data is not None or table:
        raise ParameterError(f"give either {flag} or a data file / --table files, not both")
    if meds is not None:
        for param in ("omop_schema", "domains"):
            if options[param] is not None:
                raise ParameterError(f"{SOURCE_ONLY[param]} goes with --omop; leave it out")
    return "the OMOP database" if omop is not None else "the MEDS dataset"


def refuse(given: dict[str, Any], flags: dict[str, str], why: str) -> None:
    for param, flag in flags.items():
        if given.get(param) is not None:
            raise ParameterError(f"{flag} {why}")


def fitter(engine: str, address: str | None, workers: int, gpus: float = 0.0) -> Any:
    """``fit(model, data, **kwargs) -> fitted model``: in this process, or on Ray Train."""
    if engine == "local":
        return lambda model, data, **kw: model.fit(data, **kw)
    from healthsynth.scale.train import check_gpus
    from healthsynth.scale.train import fit as fit_on_ray

    check_gpus(gpus, name="--gpus-per-worker")
    return lambda model, data, **kw: fit_on_ray(
        model, data, workers=workers, address=address, gpus_per_worker=gpus, **kw
    )


def fit_table(
    model: Any,
    generator: str,
    data: Path,
    given: dict[str, Any],
    encoding: str,
    fitter: Any,
) -> Any:
    import inspect

    from healthsynth.data import infer_schema, read_table

    df = read_table(data, encoding=encoding)
    schema = infer_schema(
        df,
        target=given["target"],
        sensitive=split_names(given["sensitive"]),
        identifiers=split_names(given["ids"]),
        source=f"data file {data}",
    )
    if given["rules"] is not None:
        from healthsynth.knowledge import load_rules

        if "rules" not in inspect.signature(model.fit).parameters:
            raise ParameterError(f"generator '{generator}' cannot enforce --rules; leave it out")
        return fitter(model, df, schema=schema, rules=load_rules(given["rules"]))
    return fitter(model, df, schema=schema)


def fit_timelines(
    model: Any, tables: dict[str, Path], given: dict[str, Any], death_value: str, fitter: Any
) -> Any:
    if given["key"] is None or given["time_col"] is None:
        raise ParameterError(
            "--table needs --key (the patient ID column) and --time (the event time column)"
        )
    roles = {
        "key": given["key"],
        "time": given["time_col"],
        "patients": next(iter(tables)),
        "end": given["end"],
        "death": given["death"],
        "death_value": scalar(death_value),
        "death_event": given["death_event"],
        "sex": given["sex"],
        "age": given["age"],
    }
    return fitter(model, read_dataset(tables, roles))


def report(model: Any, generator: str, out_dir: Path, *, timelines: bool) -> None:
    rec = model.training_record_
    how = (
        f" ({rec['epochs_run']} epochs, stopped by {rec['stop_reason']})"
        if "epochs_run" in rec
        else ""
    )
    what = (
        f"{rec['n_patients']:,} patients and {rec['n_events']:,} events"
        if timelines
        else f"{rec.get('n_rows', 0):,} rows × {len(model.schema_.modelled)} columns"
    )
    say(
        f"fitted {generator} on {what} in {rec['fit_seconds']:.1f} s{how}, peak memory "
        f"{rec['peak_rss_mb']:.0f} MiB → {out_dir}"
    )
    line = dp_line(rec)
    if line:
        say(line)
    if not timelines:
        left = left_out_line(model.schema_)
        if left:
            say(left)
    kept = structure_line(rec)
    if kept:
        say(kept)
    if getattr(model, "audit_log", None):
        say(f"LLM requests are logged to {Path(model.audit_log).resolve()}")


def left_out_line(schema: Any) -> str | None:
    """The columns the generator does not learn (identifiers, free text), in one line."""
    kinds = {"identifier": "identifiers", "text": "free text"}
    parts = []
    for kind, label in kinds.items():
        names = [c.name for c in schema.columns if not c.is_modelled and c.kind == kind]
        if names:
            parts.append(f"{', '.join(names)} ({label})")
    other = [c.name for c in schema.columns if not c.is_modelled and c.kind not in kinds]
    if other:
        parts.append(", ".join(other))
    if not parts:
        return None
    return f"not modelled, so not in the synthetic rows: {'; '.join(parts)}"


def _always_equal(tie: dict[str, Any] | None) -> str:
    """The note "(equal when pstat is 0)" for an order always tied under a category."""
    if not tie or "by" not in tie:
        return ""
    always = [v for v, q in tie["chances"].items() if q >= 1.0]
    return f" (equal when {tie['by']} is {' or '.join(always)})" if always else ""


def structure_line(rec: dict[str, Any]) -> str | None:
    """What tabular-lm learned to keep in every row (orders, sums, groups), in one line."""
    orders = (rec.get("column_order") or {}).get("orders") or []
    ties = (rec.get("column_order") or {}).get("ties") or {}
    relations = rec.get("relations") or {}
    sums = relations.get("relations") or []
    groups = relations.get("missing_together") or []
    parts = [f"order {o}{_always_equal(ties.get(o))}" for o in orders]
    parts += [f"sum {r}" for r in sums]
    parts += [f"{', '.join(g)} missing together" for g in groups]
    parts += relations.get("missing_when") or []
    if not parts:
        return None
    return f"every sampled row keeps: {'; '.join(parts)} (learned; see training.json)"


def domains(items: list[str]) -> dict[str, tuple[Any, Any]]:
    """``--range COLUMN=LOW..HIGH`` flags as ``{column: (low, high)}`` (numbers, or dates)."""
    out: dict[str, tuple[Any, Any]] = {}
    for item in items:
        name, sep, rng = item.partition("=")
        low, dots, high = rng.partition("..")
        if not sep or not name.strip() or not dots or not (low.strip() or high.strip()):
            raise ParameterError(
                f"--range '{item}' is not of the form COLUMN=LOW..HIGH (such as age=18..100, "
                "or bmi=..60 for a high side only)"
            )
        out[name.strip()] = (bound(low), bound(high))
    return out


def bound(text: str) -> Any:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text  # a date; the generator checks it against the column


def structure(path: Path) -> dict[str, Any]:
    """The ``--structure`` JSON file as a dict."""
    import json

    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ParameterError(f"--structure file {path} cannot be read ({e.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ParameterError(f"--structure file {path} is not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise ParameterError(
            f"--structure file {path} must hold a JSON object such as "
            '{"once": ["events/death"], "terminal": ["events/death"]}'
        )
    return value


def describe(items: list[str]) -> dict[str, str]:
    described: dict[str, str] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip() or not text.strip():
            raise ParameterError(f"--describe '{item}' is not of the form COLUMN=MEANING")
        described[name.strip()] = text.strip()
    return described
