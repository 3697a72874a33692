"""``healthsynth audit``: the canary audit of a fitted table generator; writes a report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from healthsynth.cli._app import TrustPickleOption, app, out, quiet_transformers, say, user_errors
from healthsynth.errors import ParameterError

__all__ = ["audit"]


@app.command()
@user_errors
def audit(
    model_dir: Annotated[Path, typer.Argument(help="Model folder written by 'fit' (a table).")],
    data: Annotated[
        Path, typer.Option(help="The training table the model was fitted on (.csv or .parquet).")
    ],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Report folder to write.")],
    canaries: Annotated[int, typer.Option(help="Unique canary records to insert.")] = 10,
    candidates: Annotated[
        int, typer.Option(help="Records each canary is ranked against (exposure).")
    ] = 10_000,
    samples: Annotated[int, typer.Option(help="Rows sampled to look for the canaries.")] = 100_000,
    copies: Annotated[int, typer.Option(help="Times each canary is inserted.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the canaries, candidates and samples.")] = 0,
    encoding: Annotated[str, typer.Option(help="Text encoding of a CSV file.")] = "utf-8",
    trust_pickle: TrustPickleOption = False,
) -> None:
    """Re-fit a model with unique canary records inserted and measure what it kept of them.

    Exposure (the canaries' likelihood rank among records like them) and reproduction in
    sampled rows, each next to the audited model, which never saw the canaries. The re-fit
    takes as long as the original fit; see docs/privacy.md for how to read the figures.
    """
    quiet_transformers()
    from healthsynth.data import check_output_folder, read_table
    from healthsynth.generators import load_generator
    from healthsynth.generators.folders import check_folder

    # everything that can be refused is refused before the model load and the re-fit
    for flag, value, low in (
        ("--canaries", canaries, 1),
        ("--candidates", candidates, 10),
        ("--samples", samples, 1),
        ("--copies", copies, 1),
    ):
        if value < low:
            raise ParameterError(f"{flag} must be at least {low}; got {value}")
    _, meta = check_folder(model_dir)
    if meta.get("data_kind", "table") != "table":
        raise ParameterError(
            f"model folder {model_dir} holds a '{meta.get('generator')}' model of "
            f"{meta.get('data_kind')}; the canary audit re-fits table generators"
        )
    protected = [data, *(p for p in Path(model_dir).rglob("*") if p.is_file())]
    check_output_folder(
        out_dir, action="write the audit report", protected=protected, kind="report"
    )
    df = read_table(data, encoding=encoding)
    model = load_generator(model_dir, trust_pickle=trust_pickle)
    say(
        f"re-fitting {meta.get('generator')} on {len(df):,} rows + {canaries * copies} canary "
        "rows (as long as the original fit) ..."
    )
    started = time.perf_counter()
    from healthsynth.audit import audit_result, canary_audit

    res = canary_audit(
        model,
        df,
        canaries=canaries,
        candidates=candidates,
        samples=samples,
        copies=copies,
        seed=seed,
    )
    result = audit_result(res, model, source=str(data), n_rows=len(df), started=started, seed=seed)
    from healthsynth.report import scorecard_table, write_report

    path = write_report(result, out_dir)
    out.print(scorecard_table(result))
    say(_verdict(result["records"]) + f" ({result['seconds']:.0f} s) → {path}")


def _verdict(records: list[dict[str, Any]]) -> str:
    """One line: the mean exposure against its reference, and the exact copies sampled."""
    by = {(r["name"], r.get("subgroup")): r for r in records}
    parts = []
    exp = by.get(("canary_exposure", None))
    if exp is not None and exp.get("status") == "ok":
        d = exp.get("details") or {}
        seen = "distinguishable from" if d.get("distinguishable") else "indistinguishable from"
        parts.append(
            f"canary exposure {exp['value']:.2f} bits ({seen} the reference "
            f"{exp['reference']:.2f}, p = {d.get('p_value', float('nan')):.3g})"
        )
    exact = by.get(("canary_reproduced", "exact"))
    if exact is not None and exact.get("status") == "ok":
        parts.append(
            f"{exact['value']:.0f} exact canary copies in {exact['details']['samples']:,} "
            f"sampled rows (reference {exact['reference']:.0f})"
        )
    return "; ".join(parts) or "nothing could be measured"
