"""The requests of the prompted-llm generator: example rows, the prompt, and repair requests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.generators._conditions import Condition
from healthsynth.generators.prompted_llm._domains import (
    derived_items,
    observed_ranges,
    shown_domains,
)
from healthsynth.generators.prompted_llm._prompts import (
    OUTPUT,
    PROMPTS,
    column_lines,
    condition_lines,
    csv_text,
    json_lines,
    render,
    row_schema,
)

__all__ = ["build_request", "example_rows", "meets", "repair_request"]

_DESCRIPTION = "Records of patients from a health study, one record per patient."


def meets(s: pd.Series, cond: Condition) -> np.ndarray:
    """Which values of ``s`` meet the condition."""
    if cond.values is not None:
        wanted = {str(v) for v in cond.values}
        return s.map(lambda v: any(v == w for w in cond.values) or str(v) in wanted).to_numpy(bool)
    x = pd.to_numeric(s, errors="coerce").to_numpy(float)
    with np.errstate(invalid="ignore"):
        return (x >= cond.low) & (x <= cond.high)


def example_rows(gen: Any, conds: Mapping[str, Condition], rng: np.random.Generator) -> np.ndarray:
    """The positions of the real rows one prompt shows (sorted)."""
    if gen.prompt == "zero-shot":
        return np.zeros(0, int)
    real = gen.real_
    pool = np.ones(len(real), bool)
    for name, cond in conds.items():
        pool &= meets(real[name], cond)
    if not pool.any():
        pool[:] = True  # no real row meets the conditions: show the population instead
    idx = np.flatnonzero(pool)
    if gen.prompt == "cllm":
        return np.sort(rng.choice(idx, size=min(gen.examples, len(idx)), replace=False))
    target = str(gen.schema_.target)
    labels = real[target].iloc[idx]
    classes = [v for v in pd.unique(labels.dropna())]
    per_class = max(1, gen.examples // max(1, len(classes)))
    chosen = []
    for v in sorted(classes, key=str):
        members = idx[(labels == v).to_numpy()]
        chosen.append(rng.choice(members, size=min(per_class, len(members)), replace=False))
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, int)


def build_request(
    gen: Any, conds: Mapping[str, Condition], rng: np.random.Generator
) -> tuple[Any, np.ndarray]:
    """One generation request, and the positions of the real rows it shows."""
    from healthsynth.llm import ChatRequest

    reveal = bool(gen.reveal_ranges)
    schema = shown_domains(gen.schema_, gen.domains_, reveal_ranges=reveal)
    idx = example_rows(gen, conds, rng)
    names = [c.name for c in schema.modelled]
    observed = observed_ranges(gen.real_, schema) if reveal else None
    context: dict[str, Any] = {
        "description": gen.description or _DESCRIPTION,
        "columns": column_lines(schema, gen.column_descriptions, observed),
        "names": names,
        "n_rows": gen.rows_per_request,
        "conditions": condition_lines(conds, schema),
    }
    rows = gen.real_.iloc[idx]
    if gen.prompt == "cllm":
        context["examples"] = json_lines(rows)
    elif gen.prompt == "balanced":
        target = str(schema.target)
        context["target"] = target
        context["header"] = ",".join(names)
        context["groups"] = [
            {"value": v, "csv": csv_text(g, names, header=True)}
            for v, g in rows.groupby(target, sort=True, observed=True)
        ]
    user = render(PROMPTS[gen.prompt], **context)
    fmt = OUTPUT[gen.prompt]
    request = ChatRequest(
        messages=[
            {"role": "system", "content": render("system.j2")},
            {"role": "user", "content": user},
        ],
        max_tokens=gen.max_tokens_,
        temperature=float(gen.temperature),
        seed=int(rng.integers(0, 2**31 - 1)),
        json_schema=row_schema(schema, conds, gen.rows_per_request) if fmt == "json" else None,
        real_rows=len(idx),
        columns=names if len(idx) else [],
        schema_columns=names,
        derived=derived_items(gen.schema_, gen.domains_, reveal_ranges=reveal),
    )
    return request, idx


def repair_request(gen: Any, request: Any, reply_text: str, error: str) -> Any:
    """The request that asks the model to mend an unreadable reply."""
    names = [c.name for c in gen.schema_.modelled]
    messages = [
        *request.messages,
        {"role": "assistant", "content": reply_text[:20000]},
        {"role": "user", "content": render("repair.j2", error=error, names=names)},
    ]
    return replace(request, messages=messages, purpose="repair")
