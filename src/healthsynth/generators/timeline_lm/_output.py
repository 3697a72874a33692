"""Turning decoded timelines back into tables shaped like the training ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Dataset, EventTable
from healthsynth.generators._folder import jsonable
from healthsynth.generators.timeline_lm._codec import TimelineCodec

__all__ = ["assemble", "decode_events", "empty_frame", "ids_like", "template"]


def template(data: Dataset) -> dict[str, Any]:
    """What sampling needs to rebuild tables shaped like the training ones (no data)."""
    roles = data.roles()
    t = data.events()[data.time]
    roles["time_integer"] = bool(
        len(t) == 0 or np.all(np.abs(t.to_numpy(float) - np.round(t.to_numpy(float))) < 1e-9)
    )
    return {
        "roles": jsonable(roles),
        "tables": {
            n: {"columns": [str(c) for c in df.columns], "dtypes": [str(d) for d in df.dtypes]}
            for n, df in data.tables.items()
        },
    }


def empty_frame(spec: Mapping[str, Any]) -> pd.DataFrame:
    """An empty table with the saved columns and dtypes."""
    cols = {}
    for c, d in zip(spec["columns"], spec["dtypes"], strict=True):
        try:
            cols[c] = pd.Series(dtype=d)
        except TypeError:
            cols[c] = pd.Series(dtype=object)
    return pd.DataFrame(cols)


def ids_like(ids: np.ndarray, dtype: Any) -> np.ndarray:
    """Patient IDs ``ids`` as numbers, or as ``syn-…`` strings for a text key."""
    if pd.api.types.is_numeric_dtype(dtype):
        return ids.astype(np.int64)
    return np.array([f"syn-{int(i):08d}" for i in ids], dtype=object)


def decode_events(
    codec: TimelineCodec,
    code_map: Any,
    tokens: list[np.ndarray],
    states: list[np.ndarray],
    days: list[np.ndarray],
    rng: np.random.Generator,
) -> pd.DataFrame:
    """The events of decoded timelines: one row per item token, with its day and value."""
    lengths = np.array([len(t) for t in tokens])
    row = np.repeat(np.arange(len(tokens)), lengths)
    tok = np.concatenate(tokens) if len(tokens) else np.zeros(0, np.int64)
    st = np.concatenate(states) if len(states) else np.zeros(0, np.int64)
    at_item = np.flatnonzero(
        (st == codec.S_ITEM) & (tok >= codec.item0) & (tok < codec.item0 + codec.n_item_tokens)
    )
    item_tok = tok[at_item] - codec.item0
    item = codec.token_item[item_tok] if len(item_tok) else item_tok
    value = np.full(len(at_item), np.nan)
    for i, num in enumerate(codec.values):
        if num is None:
            continue
        sel = np.flatnonzero(item == i)
        if not len(sel):
            continue
        pos = at_item[sel]
        if codec.joint[i]:  # the value is in the item's joint token
            t0, t1 = codec.token_value[item_tok[sel]], None
        else:
            t0 = tok[pos + 1] - codec.val_c[i]
            t1 = tok[pos + 2] - codec.val_f[i] if num.two else None
        entry = None
        if code_map is not None:
            entry = code_map.get(*codec.items[i])
        low = entry.low if entry is not None else None
        high = entry.high if entry is not None else None
        value[sel] = num.decode(t0, t1, rng, low, high)
    day_all = np.full(len(tok), np.nan)
    if len(days):
        # days are recorded per item-state position, in order
        day_all[np.flatnonzero(st == codec.S_ITEM)] = np.concatenate(days)
    day = day_all[at_item]
    tables = np.array([t for t, _ in codec.items], dtype=object)
    names = np.array([i for _, i in codec.items], dtype=object)
    return pd.DataFrame(
        {
            "_row": row[at_item],
            "_day": day,
            "table": tables[item] if len(item) else np.array([], dtype=object),
            "item": names[item] if len(item) else np.array([], dtype=object),
            "value": value,
        }
    )


def assemble(tpl: Mapping[str, Any], patients: pd.DataFrame, events: pd.DataFrame) -> Dataset:
    """A Dataset shaped like the training one from sampled patients and events."""
    roles = tpl["roles"]
    key, time_col = roles["key"], roles["time"]
    tables = {name: empty_frame(spec) for name, spec in tpl["tables"].items()}
    like = tables[roles["patients"]]
    p = patients.rename(columns={"_id": key})
    p = p[[c for c in like.columns]]
    p[key] = ids_like(p[key].to_numpy(), like[key].dtype)
    days = events["_day"].to_numpy(float)
    if roles.get("time_integer"):
        days = np.round(days)
    ev = pd.DataFrame(
        {
            key: ids_like(events["_id"].to_numpy(), like[key].dtype),
            time_col: days,
            "table": events["table"].to_numpy(),
            "item": events["item"].to_numpy(),
            "value": events["value"].to_numpy(float),
        }
    )
    ds = Dataset(
        tables=tables,
        key=key,
        time=time_col,
        patients=roles["patients"],
        layouts={n: EventTable.from_dict(d) for n, d in roles["layouts"].items()},
        schemas={},
        end=roles.get("end"),
        death=roles.get("death"),
        sex=roles.get("sex"),
        age=roles.get("age"),
        death_value=roles.get("death_value", 1),
        death_event=roles.get("death_event"),
    )
    out = ds.with_events(p, ev)
    return out
