"""timeline-lm's settings table and the checks of its data and knowledge."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from healthsynth.data import Dataset
from healthsynth.errors import DataError, ParameterError
from healthsynth.generators._base import warn

__all__ = [
    "MIN_PATIENTS",
    "as_code_map",
    "check_data",
    "fit_code_map",
    "learn_structure",
    "validate_params",
]

MIN_PATIENTS = 20

_PARAMS: dict[str, tuple[Any, Any]] = {
    "epochs": (int, lambda v: v >= 1),
    "token_budget": (int, lambda v: v >= 64),
    "learning_rate": ((float, int), lambda v: v > 0),
    "n_embd": (int, lambda v: v >= 8),
    "n_layer": (int, lambda v: v >= 1),
    "n_head": (int, lambda v: v >= 1),
    "dropout": ((float, int), lambda v: 0 <= v < 1),
    "n_bins": (int, lambda v: v >= 2),
    "n_sub_bins": (int, lambda v: v >= 2),
    "max_discrete": (int, lambda v: v >= 0),
    "max_tokens": (int, lambda v: v >= 16),
    "max_flags": (int, lambda v: v >= 0),
    "validation_fraction": ((float, int), lambda v: 0 < v < 0.5),
    "patience": (int, lambda v: v >= 1),
    "perm_prob": ((float, int), lambda v: 0 <= v <= 1),
    "sample_batch_size": (int, lambda v: v >= 1),
    "temperature": ((float, int), lambda v: v > 0),
    "seed": (int, lambda v: True),
}
#: Settings that may be ``None`` (checked apart from the table above).
_OPTIONAL = {
    "threads": lambda v: v >= 1,
    "max_time": lambda v: v > 0,
    "average_half_life": lambda v: 0 < v < float("inf"),
}


def validate_params(gen: Any) -> None:
    """Check the settings of a TimelineLM against the table above."""
    for name, (types, ok) in _PARAMS.items():
        v = getattr(gen, name)
        allowed = types if isinstance(types, tuple) else (types,)
        if isinstance(v, bool) or not isinstance(v, allowed) or not ok(v):
            raise ParameterError(f"parameter '{name}' of timeline-lm has an invalid value {v!r}")
    if gen.n_embd % gen.n_head:
        raise ParameterError(
            f"parameter 'n_embd' ({gen.n_embd}) must be a multiple of 'n_head' ({gen.n_head})"
        )
    for name, ok in _OPTIONAL.items():
        v = getattr(gen, name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not ok(v)):
            raise ParameterError(f"parameter '{name}' of timeline-lm has an invalid value {v!r}")
    for flag in ("learn_structure", "calibrate", "joint_values", "time_context"):
        if not isinstance(getattr(gen, flag), bool):
            raise ParameterError(
                f"parameter '{flag}' of timeline-lm must be True or False; got "
                f"{getattr(gen, flag)!r}"
            )
    if gen.structure is not None and not isinstance(gen.structure, Mapping):
        raise ParameterError(
            "parameter 'structure' of timeline-lm must be a dict such as {'once': [...], "
            f"'terminal': [...]}}; got {type(gen.structure).__name__}"
        )


def learn_structure(gen: Any, data: Dataset, events: pd.DataFrame, codec: Any) -> Any:
    """The structure rules of ``data`` (learned unless turned off, then overridden)."""
    from healthsynth.data._death import split_code
    from healthsynth.generators.timeline_lm._structure import Structure

    death_item = None
    if data.death_event is not None:
        table, item = split_code(data.death_event, data.tables)
        hits = [i for i, (t, it) in enumerate(codec.items) if it == item and table in ("", t)]
        death_item = hits[0] if hits else None
    end = None
    if data.end is not None:  # each patient's end of follow-up, for the at_end rule
        end = data.patient_table.set_index(data.key)[data.end]
    return Structure.learn(
        events,
        key=data.key,
        time=data.time,
        items=codec.items,
        n_patients=data.n_patients,
        learn=gen.learn_structure,
        overrides=gen.structure,
        death_item=death_item,
        end=end,
    )


def check_data(data: Any) -> None:
    """Refuse data timeline-lm cannot learn from, with one sentence."""
    if not isinstance(data, Dataset):
        raise DataError(
            "timeline-lm learns from a healthsynth.data.Dataset (a patients table and event "
            f"tables); got {type(data).__name__}"
        )
    if data.times_are_dates:
        raise DataError(
            f"timeline-lm needs event times as numbers of days from an index date; the "
            f"column '{data.time}' holds dates: subtract each patient's index date first"
        )
    if data.n_patients < MIN_PATIENTS:
        raise DataError(
            f"the patients table has {data.n_patients} patients; timeline-lm needs at least "
            f"{MIN_PATIENTS} to learn from"
        )


def fit_code_map(code_map: Any, setting: Any, events: pd.DataFrame) -> Any:
    """The code mapping to fit with: given to fit, or the deprecated ``code_map`` setting."""
    if code_map is None and setting is not None:
        warnings.warn(
            "TimelineLM(code_map=...) is deprecated; give the mapping to fit(data, "
            "code_map=...) as rules are given to tabular-lm",
            DeprecationWarning,
            stacklevel=3,
        )
        code_map = setting
    code_map = as_code_map(code_map)
    if code_map is not None:
        unknown = code_map.unmapped(events)
        if len(unknown):
            listed = ", ".join(
                f"{t}/{i}" for t, i in zip(unknown["table"], unknown["item"], strict=True)
            )
            warn(
                f"the code mapping '{code_map.name}' does not know {len(unknown)} item(s): "
                f"{listed}; they are generated and exported under their own names",
                stacklevel=4,
            )
    return code_map


def as_code_map(code_map: Any) -> Any:
    """A CodeMap from a CodeMap, a packaged mapping name or a CSV path (None: none)."""
    if code_map is None:
        return None
    from healthsynth.knowledge import CodeMap, load_code_map

    if isinstance(code_map, CodeMap):
        return code_map
    if isinstance(code_map, (str, Path)):
        return load_code_map(code_map)
    raise ParameterError(
        f"parameter 'code_map' must be a CodeMap, a packaged mapping name or a CSV path; got "
        f"{type(code_map).__name__}"
    )
