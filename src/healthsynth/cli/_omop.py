"""Databases at the command line: ``fit --omop URL`` / ``fit --meds PATH`` and ``sample --to URL``.

Both only call the public API (:func:`healthsynth.data.read_omop`, :func:`~healthsynth.data.
read_meds`, :func:`~healthsynth.data.write_omop`) and print what they did; the database URL is
shown without its password.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from healthsynth.cli._app import say, split_names
from healthsynth.errors import ParameterError

__all__ = ["check_database_output", "read_source", "sample_to_database"]


def read_source(
    *,
    omop: str | None,
    meds: Path | None,
    schema: str | None,
    domains: str | None,
    max_patients: int | None,
    seed: int,
) -> tuple[Any, Any]:
    """The dataset and its learned code map from an OMOP database or a MEDS folder."""
    from healthsynth.knowledge import CodeMap

    if omop is not None:
        from healthsynth.data import display_url, read_omop

        got = read_omop(
            omop,
            schema=schema,
            domains=split_names(domains) or None,
            max_patients=max_patients,
            seed=seed,
        )
        rec = got.record
        events = sum(c["read"] for c in rec["events"].values())
        say(
            f"read {rec['persons_read']:,} persons and {events:,} events "
            f"({', '.join(t for t, c in rec['events'].items() if c['read'])}) from schema "
            f"'{rec['schema']}' at {display_url(omop)} in {rec['seconds']:.1f} s"
        )
        return got.dataset, CodeMap.from_frame(got.concepts, name="omop")
    from healthsynth.data import read_meds

    assert meds is not None
    got_meds = read_meds(meds, max_patients=max_patients, seed=seed)
    rec = got_meds.record
    say(
        f"read {rec['subjects_read']:,} subjects and {sum(rec['events'].values()):,} events "
        f"from the MEDS dataset {meds} in {rec['seconds']:.1f} s"
    )
    return got_meds.dataset, CodeMap.from_frame(got_meds.codes, name="meds")


def check_database_output(
    to: str | None, output: Path | None, fmt: str | None, timelines: bool, overwrite: bool
) -> None:
    """Refuse ``--to`` combinations that cannot work, before the model load."""
    if to is None:
        raise ParameterError("--omop-schema and --replace go with --to URL; give the database")
    if not timelines:
        raise ParameterError(
            "--to writes OMOP CDM tables of patient timelines; this model generates table rows"
        )
    if output is not None:
        raise ParameterError("give either --output or --to, not both")
    if fmt not in (None, "omop"):
        raise ParameterError(f"--to writes OMOP CDM tables; --format {fmt} does not apply")
    if overwrite:
        raise ParameterError(
            "--overwrite and --csv-safe apply to files; with --to leave them out (--replace "
            "recreates the tables)"
        )


def sample_to_database(
    model: Any,
    *,
    model_dir: Path,
    n: int,
    url: str,
    schema: str | None,
    replace: bool,
    conditions: dict[str, Any],
    seed: int | None,
) -> None:
    """Sample patients and write them into a database as OMOP CDM tables.

    The run record (model, n, conditions, seed, versions) goes into
    ``cdm_source.source_description``, next to the output.
    """
    from healthsynth.data import default_schema, display_url, write_omop
    from healthsynth.generators.folders import peak_rss_mb, runtime_info

    schema = schema or default_schema(url)
    start = time.perf_counter()
    ds = model.sample(n, conditions=conditions or None, seed=seed)
    took = time.perf_counter() - start
    run = {
        "command": "sample",
        "model": str(model_dir),
        "n": n,
        "unit": "patients",
        "format": "omop",
        "conditions": conditions,
        "seed": seed,
        "output": f"{display_url(url)} schema {schema}",
        "sample_seconds": round(took, 3),
        "peak_rss_mb": peak_rss_mb(),
        "runtime": runtime_info(),
    }
    counts = write_omop(
        ds,
        url,
        schema=schema,
        code_map=getattr(model, "code_map_", None),
        replace=replace,
        source_description=json.dumps(run, default=str),
    )
    took = time.perf_counter() - start
    rows = ", ".join(f"{t} {c:,}" for t, c in counts.items() if c and t != "cdm_source")
    say(
        f"wrote {n:,} patients into schema '{schema}' at {display_url(url)} in "
        f"{took:.1f} s ({rows})"
    )
