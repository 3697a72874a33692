"""Note prompts: one Jinja2 template per kind of note (package data, ``templates/*.j2``)."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from healthsynth.errors import ParameterError
from healthsynth.notes._lexicon import Lexicon
from healthsynth.notes._patients import Patient

__all__ = ["KINDS", "describe", "kind_template", "prompt_record", "render_prompt"]

#: kind of note -> template file
KINDS = {
    "discharge summary": "discharge_summary.j2",
    "progress note": "progress_note.j2",
    "radiology report": "radiology_report.j2",
}


@cache
def _env() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("healthsynth.notes", "templates"),
        autoescape=False,  # noqa: S701 - plain-text prompts, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        undefined=jinja2.StrictUndefined,
    )


def kind_template(kind: str) -> str:
    """The template file of a kind of note; a :class:`ParameterError` lists the known kinds."""
    name = re.sub(r"[\s_-]+", " ", str(kind)).strip().lower()
    if name not in KINDS:
        raise ParameterError(
            f"there is no note template for kind {kind!r}; the known kinds are: "
            f"{', '.join(repr(k) for k in KINDS)}"
        )
    return KINDS[name]


def truthy(v: Any) -> bool | None:
    """Whether a condition value means present (None when unknown)."""
    if v is None:
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v > 0
    s = str(v).strip().lower()
    if s in ("", "nan", "na", "unknown"):
        return None
    if s in ("yes", "y", "true", "t", "present", "positive"):
        return True
    if s in ("no", "n", "false", "f", "absent", "negative", "none"):
        return False
    try:
        return float(s) > 0
    except ValueError:
        return None


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def describe(patient: Patient, lexicon: Lexicon) -> list[str]:
    """The patient's attributes as prompt lines (``age: 58.8 years``, ``ascites: absent``)."""
    lines = []
    for col, v in patient.attributes.items():
        role = lexicon.role(col)
        if role == "age":
            lines.append(f"age: {_num(v)} years" if v is not None else "age: unknown")
            continue
        if role in ("male_flag", "female_flag"):
            t = truthy(v)
            sex = None if t is None else ("male" if t == (role == "male_flag") else "female")
            lines.append(f"sex: {sex or 'unknown'}")
            continue
        if role == "sex":
            lines.append(f"sex: {v if v is not None else 'unknown'}")
            continue
        concept = lexicon.for_column(col)
        if concept is not None and concept.kind == "condition":
            t = truthy(v)
            state = "unknown" if t is None else ("present" if t else "absent")
            lines.append(f"{concept.name}: {state}")
        elif concept is not None:
            unit = f" {concept.unit}" if concept.unit else ""
            lines.append(
                f"{concept.name}: {_num(v)}{unit}"
                if v is not None
                else f"{concept.name}: not measured"
            )
        else:
            lines.append(f"{col}: {_num(v) if v is not None else 'unknown'}")
    return lines


def _event_text(e: dict[str, Any], lexicon: Lexicon) -> str:
    concept = lexicon.for_item(e["item"])
    value = e.get("value")
    if concept is not None and concept.kind == "condition":
        return f"{concept.name} diagnosed"
    if concept is not None:
        unit = f" {concept.unit}" if concept.unit else ""
        return f"{concept.name} {_num(value)}{unit}" if value is not None else concept.name
    shown = f" {_num(value)}" if value is not None else ""
    return f"{e['item']}{shown} ({e['table']})"


def prompt_record(patient: Patient) -> dict[str, Any]:
    """The patient as the prompt's JSON line holds it (attributes; events without tables)."""
    record: dict[str, Any] = {"attributes": patient.attributes}
    if patient.events:
        record["events"] = [
            {k: e[k] for k in ("day", "item", "value") if e.get(k) is not None}
            for e in patient.events
        ]
    return record


def render_prompt(
    patient: Patient,
    *,
    kind: str,
    lexicon: Lexicon,
    description: str | None = None,
    words: int = 300,
) -> list[dict[str, str]]:
    """The chat messages asking for one note about ``patient``."""
    env = _env()
    events = [{"day": e["day"], "text": _event_text(e, lexicon)} for e in patient.events]
    record = prompt_record(patient)
    user = env.get_template(kind_template(kind)).render(
        facts=describe(patient, lexicon),
        events=events,
        events_total=patient.events_total,
        description=description,
        record_json=json.dumps(record, ensure_ascii=False, default=str),
        words=words,
    )
    system = env.get_template("system.j2").render()
    return [
        {"role": "system", "content": _tidy(system)},
        {"role": "user", "content": _tidy(user)},
    ]


def _tidy(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())
