"""tabular-lm's settings table and the checks of its data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from healthsynth.data import Schema, infer_schema
from healthsynth.errors import DataError, ParameterError
from healthsynth.generators._base import warn

__all__ = ["MIN_ROWS", "check_data", "validate_params"]

#: Fewer rows than this cannot be split into training and validation parts.
MIN_ROWS = 10

_PARAMS: dict[str, tuple[type | tuple[type, ...], Any]] = {
    # name: (accepted types, check) — one table, so every message has the same shape
    "epochs": ((int, type(None)), lambda v: v is None or v >= 1),
    "batch_size": ((int, type(None)), lambda v: v is None or v >= 1),
    "learning_rate": ((float, int, type(None)), lambda v: v is None or v > 0),
    "n_embd": ((int,), lambda v: v >= 8),
    "n_layer": ((int,), lambda v: v >= 1),
    "n_head": ((int,), lambda v: v >= 1),
    "dropout": ((float, int, type(None)), lambda v: v is None or 0 <= v < 1),
    "n_bins": ((int,), lambda v: v >= 2),
    "n_sub_bins": ((int,), lambda v: v >= 1),
    "max_discrete": ((int,), lambda v: v >= 1),
    "validation_fraction": ((float,), lambda v: 0 < v < 0.5),
    "patience": ((int,), lambda v: v >= 1),
    "early_stopping": ((bool,), lambda v: True),
    "dp_accountant": ((str,), lambda v: True),
    "perm_prob": ((float, int), lambda v: 0 <= v <= 1),
    "target_share": ((float, int), lambda v: 0 <= v <= 1),
    "target_last": ((bool,), lambda v: True),
    "label_model": ((bool, type(None)), lambda v: True),
    "label_kind": ((str,), lambda v: v in ("auto", "logistic", "spline", "boosted")),
    "label_share": ((float, int), lambda v: 0 <= v <= 1),
    "column_order": ((str, list, tuple), lambda v: True),  # checked against the data at fit
    "relations": ((str,), lambda v: v in ("learn", "off")),
    "max_time": ((float, int, type(None)), lambda v: v is None or v > 0),
    "privacy_stop": ((bool,), lambda v: True),
    "privacy_every": ((int,), lambda v: v >= 1),
    "base_model": ((str, Path, type(None)), lambda v: True),
    "prior": ((str, Path, type(None)), lambda v: True),
    "sample_batch_size": ((int,), lambda v: v >= 1),
    "temperature": ((float, int), lambda v: v > 0),
    "herding": ((int, str), lambda v: v == "auto" or (isinstance(v, int) and v >= 1)),
    "threads": ((int, type(None)), lambda v: v is None or v >= 1),
    "seed": ((int,), lambda v: True),
    "verbose": ((bool,), lambda v: True),
}

#: Settings that take one of a few words (named in the message when another is given).
_CHOICES = {
    "label_kind": ("auto", "logistic", "spline", "boosted"),
    "relations": ("learn", "off"),
    "herding": ("auto", "or a whole number of at least 1"),
}


def validate_params(gen: Any) -> None:
    """Check the settings of a TabularLM against the table above."""
    for name, (types, ok) in _PARAMS.items():
        v = getattr(gen, name)
        if isinstance(v, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
            raise ParameterError(f"parameter '{name}' must be a number; got {v!r}")
        if not isinstance(v, types) or not ok(v):
            choices = _CHOICES.get(name)
            hint = f"; choose one of {', '.join(choices)}" if choices else ""
            raise ParameterError(f"parameter '{name}' has an invalid value {v!r}{hint}")
    if gen.prior is not None:
        from healthsynth.generators.tabular_lm._prior import prior_info

        if gen.base_model is not None:
            raise ParameterError("give either base_model or prior, not both")
        prior_info(gen.prior)  # one sentence if it is not a usable prior
    if gen.base_model is None and gen.n_embd % gen.n_head:
        raise ParameterError(
            f"parameter 'n_embd' ({gen.n_embd}) must be a multiple of 'n_head' ({gen.n_head})"
        )


def check_data(data: Any, schema: Schema | None) -> Schema:
    """Refuse a table tabular-lm cannot learn from; warn about columns it leaves out.

    Returns the schema (inferred when none is given, else checked against ``data``).
    """
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame; got {type(data).__name__}")
    if schema is None:
        schema = infer_schema(data)
    else:
        schema.validate(data)
    if len(data) < MIN_ROWS:
        raise DataError(
            f"the data has {len(data)} row{'s' if len(data) != 1 else ''}; tabular-lm needs "
            f"at least {MIN_ROWS} to learn from"
        )
    for c in schema.columns:
        if c.kind == "text":
            warn(
                f"column '{c.name}' holds free text, which tabular-lm does not generate yet; "
                "it is left out of the synthetic data",
                stacklevel=4,
            )
        elif c.is_modelled and data[c.name].isna().all():
            warn(f"column '{c.name}' is entirely missing; it is generated as missing", stacklevel=4)
    if not schema.modelled:
        raise DataError(
            "the data has no column to learn: every column is an identifier or free text"
        )
    return schema
