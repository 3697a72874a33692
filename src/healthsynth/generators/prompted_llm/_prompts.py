"""Prompt building: the templates are package data (``prompts/*.j2``), rendered with Jinja2."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from functools import cache, partial
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.generators._conditions import Condition

__all__ = [
    "OUTPUT",
    "PROMPTS",
    "column_lines",
    "condition_lines",
    "csv_text",
    "json_lines",
    "render",
    "row_schema",
]

#: prompt name -> template file
PROMPTS = {"cllm": "cllm.j2", "balanced": "balanced.j2", "zero-shot": "zero_shot.j2"}
#: how each prompt asks for its answer
OUTPUT = {"cllm": "json", "balanced": "csv", "zero-shot": "json"}


@cache
def _env() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("healthsynth.generators.prompted_llm", "prompts"),
        autoescape=False,  # noqa: S701 - plain-text prompts, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        undefined=jinja2.StrictUndefined,
    )


def render(template: str, **context: Any) -> str:
    """Render ``prompts/<template>`` with ``context``."""
    text: str = _env().get_template(template).render(**context)
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _fmt(x: Any, precision: int | None) -> str:
    if precision is not None and precision <= 0:
        return str(int(round(float(x))))
    if precision is not None:
        return f"{float(x):.{precision}f}"
    return f"{float(x):g}"


def column_lines(
    schema: Schema,
    descriptions: Mapping[str, str] | None = None,
    observed: Mapping[str, tuple[Any, Any]] | None = None,
) -> list[dict[str, str]]:
    """One ``{"name", "text"}`` per modelled column: meaning, type, range or categories.

    The ranges are ``schema``'s (the shown domains); ``observed`` adds the real rows' own range
    after them (only with ``reveal_ranges``).
    """
    out = []
    for c in schema.modelled:
        parts = []
        if descriptions and descriptions.get(c.name):
            parts.append(str(descriptions[c.name]))
        if c.kind == "integer" or (c.kind == "numeric" and c.precision == 0):
            kind = "whole number"
        elif c.kind == "numeric":
            kind = (
                f"number with {c.precision} decimal{'s' if c.precision != 1 else ''}"
                if c.precision is not None
                else "number"
            )
        elif c.kind in ("categorical", "boolean"):
            kind = "one of: " + ", ".join(str(v) for v in (c.categories or ()))
        elif c.kind == "datetime":
            kind = "date (YYYY-MM-DD)"
        else:
            kind = c.kind
        if c.kind in ("numeric", "integer", "datetime"):
            p = 0 if c.kind == "integer" else c.precision
            show: Any = (
                (lambda v: str(v)[:10]) if c.kind == "datetime" else partial(_fmt, precision=p)
            )
            kind += _range_words(c.minimum, c.maximum, show)
            seen = (observed or {}).get(c.name)
            if seen is not None and (seen[0], seen[1]) != (c.minimum, c.maximum):
                kind += f" ({show(seen[0])} to {show(seen[1])} in the real records)"
        parts.append(kind)
        if c.missing_rate > 0:
            parts.append(f"unknown in about {max(1, round(100 * c.missing_rate))}% of records")
        else:
            parts.append("always known")
        out.append({"name": c.name, "text": "; ".join(parts)})
    return out


def _range_words(low: Any, high: Any, show: Any) -> str:
    if low is not None and high is not None:
        return f" from {show(low)} to {show(high)}"
    if low is not None:
        return f" of at least {show(low)}"
    if high is not None:
        return f" of at most {show(high)}"
    return ""


def condition_lines(conditions: Mapping[str, Condition], schema: Schema) -> list[str]:
    """The sampling conditions in words."""
    out = []
    for name, cond in conditions.items():
        if cond.values is not None:
            vals = [str(v) for v in cond.values]
            out.append(f"{name} is {vals[0]}" if len(vals) == 1 else f"{name} is one of {vals}")
            continue
        p = schema[name].precision
        lo, hi = cond.low, cond.high
        if math.isfinite(lo) and math.isfinite(hi):
            out.append(
                f"{name} is {_fmt(lo, p)}"
                if lo == hi
                else f"{name} is between {_fmt(lo, p)} and {_fmt(hi, p)}"
            )
        elif math.isfinite(lo):
            out.append(f"{name} is at least {_fmt(lo, p)}")
        else:
            out.append(f"{name} is at most {_fmt(hi, p)}")
    return out


def row_schema(schema: Schema, conditions: Mapping[str, Condition], n_rows: int) -> dict[str, Any]:
    """The JSON schema of a reply: ``{"rows": [n_rows objects]}``, conditions as enums/bounds."""
    props: dict[str, Any] = {}
    for c in schema.modelled:
        spec: dict[str, Any]
        if c.kind in ("categorical", "boolean"):
            cats = list(c.categories or ())
            cond = conditions.get(c.name)
            if cond is not None and cond.values is not None:
                cats = list(cond.values)
            spec = {"enum": [_json_value(v) for v in cats]}
        elif c.kind in ("numeric", "integer"):
            spec = {"type": "integer" if c.kind == "integer" else "number"}
            lo = float(c.minimum) if c.minimum is not None else -math.inf
            hi = float(c.maximum) if c.maximum is not None else math.inf
            cond = conditions.get(c.name)
            if cond is not None:
                lo, hi = max(lo, cond.low), min(hi, cond.high)
            if math.isfinite(lo):
                spec["minimum"] = _json_value(lo)
            if math.isfinite(hi):
                spec["maximum"] = _json_value(hi)
        elif c.kind == "datetime":
            spec = {"type": "string", "format": "date"}
        else:
            spec = {"type": "string"}
        if c.missing_rate > 0 and c.name not in conditions:
            spec = {"anyOf": [spec, {"type": "null"}]}
        props[c.name] = spec
    return {
        "type": "object",
        "properties": {
            "rows": {
                "type": "array",
                "minItems": n_rows,
                "maxItems": n_rows,
                "items": {
                    "type": "object",
                    "properties": props,
                    "required": list(props),
                    "additionalProperties": False,
                },
            }
        },
        "required": ["rows"],
        "additionalProperties": False,
    }


def _json_value(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def json_lines(df: pd.DataFrame) -> list[str]:
    """Each row as a compact JSON object (missing values as null)."""
    records = df.astype(object).where(df.notna(), None).to_dict("records")
    return [
        json.dumps({k: _json_value(v) for k, v in r.items()}, default=str, ensure_ascii=False)
        for r in records
    ]


def csv_text(df: pd.DataFrame, columns: Sequence[str], *, header: bool = False) -> str:
    """Rows as CSV lines (missing values empty)."""
    buf = io.StringIO()
    df[list(columns)].to_csv(buf, index=False, header=header, lineterminator="\n")
    return buf.getvalue().rstrip("\n")
