"""The canary audit as an evaluation result, so that the report renders it like any other."""

from __future__ import annotations

from typing import Any

__all__ = ["audit_result"]


def audit_result(
    audit: dict[str, Any], model: Any, *, source: str, n_rows: int, started: float, seed: int
) -> dict[str, Any]:
    """What :func:`healthsynth.report.write_report` takes, from :func:`canary_audit`'s result.

    Parameters
    ----------
    audit
        What :func:`healthsynth.audit.canary_audit` returned.
    model
        The audited generator (its training record heads the report).
    source
        Where the training rows came from (a file name), for the report.
    n_rows
        How many training rows the audit read.
    started
        ``time.perf_counter()`` when the audit began (the report's seconds).
    seed
        The audit's seed.
    """
    from healthsynth.audit._canaries import INFO
    from healthsynth.evaluate._runner import result

    glossary = {m.name: INFO.describe(m.name) for m in INFO.measures}
    return result(
        audit["records"],
        glossary,
        kind="table",
        start=started,
        seed=seed,
        training=getattr(model, "training_record_", None),
        warnings=[],
        real={"source": source, "rows": n_rows, "columns": len(model.schema_.modelled)},
        audit=audit["meta"],
    )
