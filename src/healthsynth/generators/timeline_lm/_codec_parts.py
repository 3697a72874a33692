"""The parts of a timeline codec learned from a dataset: items and flags, value codecs, time.

Module-level helpers of :class:`._codec.TimelineCodec` (see its module docstring for the token
layout): which items get a presence flag, the patients table with those flags, each valued
item's number codec, and the day arithmetic of start days and gaps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Column, Dataset, Schema
from healthsynth.generators.tabular_lm._codec import _ColumnCodec

__all__ = ["UNSAID", "flag_name"]

#: the value of a presence flag that says nothing (see :meth:`TimelineCodec.hide_flags`)
UNSAID = 2


def flag_name(table: str, item: str) -> str:
    """Name of the presence-flag column of an item."""
    return f"has:{table}/{item}"


def _time_column(name: str, precision: int | None) -> Column:
    return Column(
        name=name,
        kind="integer" if precision == 0 else "numeric",
        precision=precision,
        dtype="int64" if precision == 0 else "float64",
    )


def _precision(x: np.ndarray) -> int | None:
    x = x[np.isfinite(x)]
    return 0 if len(x) == 0 or np.all(np.abs(x - np.round(x)) < 1e-9) else None


def _items_and_flags(
    dataset: Dataset, events: pd.DataFrame, max_flags: int
) -> tuple[list[tuple[str, str]], list[int]]:
    """Items in table order, then by frequency; and the ``max_flags`` most common to flag."""
    key = dataset.key
    items = events.groupby(["table", "item"], sort=False).size().sort_values(ascending=False)
    order = {n: i for i, n in enumerate(dataset.event_tables)}
    item_list = sorted(items.index.tolist(), key=lambda ti: (order[ti[0]], -items[ti], ti[1]))
    n_with = events.drop_duplicates([key, "table", "item"]).groupby(["table", "item"]).size()
    n_patients = len(dataset.patient_table)
    flag_items = [
        i
        for i, ti in enumerate(item_list)
        if ti in n_with.index and n_with[ti] < n_patients  # a flag always yes says nothing
    ]
    flag_items = sorted(flag_items, key=lambda i: -n_with[item_list[i]])[:max_flags]
    flag_items.sort()
    return item_list, flag_items


def _value_codecs(
    events: pd.DataFrame,
    item_list: list[tuple[str, str]],
    *,
    n_bins: int,
    n_sub_bins: int,
    max_discrete: int,
) -> tuple[list[dict[str, Any] | None], list[dict[str, Any] | None]]:
    """Per item, the state of its value codec and its value column (None: no values)."""
    values: list[dict[str, Any] | None] = []
    value_columns: list[dict[str, Any] | None] = []
    grouped = dict(tuple(events.groupby(["table", "item"], sort=False)["value"]))
    for ti in item_list:
        v = grouped[ti]
        if v.notna().sum() == 0:
            values.append(None)
            value_columns.append(None)
            continue
        col = _value_column(ti, v)
        values.append(
            _ColumnCodec.fit(
                col, v, n_bins=n_bins, n_sub_bins=n_sub_bins, max_discrete=max_discrete
            ).state
        )
        value_columns.append(col.to_dict())
    return values, value_columns


def _days(t: pd.Series, dataset: Dataset) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(t):
        raise NotImplementedError  # handled by the generator, which converts dates first
    return pd.to_numeric(t).to_numpy(float)


def _spread(x: np.ndarray) -> np.ndarray:
    """Time values with at least two distinct numbers, so that they get bins and sub-bins."""
    if len(np.unique(x)) < 2:
        x = np.append(x, (x.max() if len(x) else 0.0) + 1.0)
    return x


def _gaps(pid: np.ndarray, t: np.ndarray) -> np.ndarray:
    if len(t) < 2:
        return np.zeros(0)
    same = pid[1:] == pid[:-1]
    return (t[1:] - t[:-1])[same]


def _value_column(ti: tuple[str, str], v: pd.Series) -> Column:
    x = pd.to_numeric(v, errors="coerce").to_numpy(float)
    prec = _precision(x)
    if prec is None:
        finite = x[np.isfinite(x)]
        for d in range(1, 7):
            if np.all(np.abs(finite * 10**d - np.round(finite * 10**d)) < 1e-6):
                prec = d
                break
    return Column(
        name=f"{ti[0]}/{ti[1]}",
        kind="numeric",
        precision=prec,
        dtype="float64",
        missing_rate=float(np.mean(~np.isfinite(x))) if len(x) else 0.0,
    )


def _static_frame(
    dataset: Dataset,
    items: list[tuple[str, str]],
    flag_items: list[int],
    *,
    schema: Schema | None = None,
) -> tuple[pd.DataFrame, Schema]:
    """The patients table (without the key) plus one yes/no column per flagged item."""
    from healthsynth.data import infer_schema

    p = dataset.patient_table
    key = dataset.key
    ev = dataset.events()
    have = ev.drop_duplicates([key, "table", "item"])
    df = p.drop(columns=[key]).reset_index(drop=True)
    for i in flag_items:
        table, item = items[i]
        ids = have.loc[(have["table"] == table) & (have["item"] == item), key]
        df[flag_name(table, item)] = p[key].isin(set(ids.tolist())).astype(np.int64).to_numpy()
    if schema is None:
        base = dataset.schemas.get(dataset.patients)
        kinds: dict[str, Any] = {flag_name(*items[i]): "boolean" for i in flag_items}
        schema = infer_schema(df, kinds=kinds, source="the patients table")
        if base is not None:  # keep the user's column kinds for the patients' own columns
            kept = [base[c.name] if c.name in base else c for c in schema.columns]
            schema = Schema(columns=tuple(kept), metadata=schema.metadata)
        cols = tuple(
            Column(
                **{**c.to_dict(), "kind": "categorical", "categories": (0, 1, UNSAID), "roles": ()}
            )
            if c.name.startswith("has:")
            else c
            for c in schema.columns
        )
        schema = Schema(columns=cols, metadata=schema.metadata)
    return df, schema
