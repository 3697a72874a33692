"""How an event table is laid out: one code column (with an optional value), or wide columns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from healthsynth.errors import DataError

__all__ = ["EventTable", "Layout", "infer_layout"]

Layout = Literal["code", "wide"]


@dataclass(frozen=True)
class EventTable:
    """How one event table is laid out.

    Parameters
    ----------
    layout
        ``"code"``: ``code`` names the event and ``value`` (optional) holds its number;
        ``"wide"``: every column in ``columns`` is a measured item of the visit.
    code, value
        The code and value columns of a ``code`` table.
    columns
        The measured columns of a ``wide`` table.
    """

    layout: Layout
    code: str | None = None
    value: str | None = None
    columns: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "layout": self.layout,
            "code": self.code,
            "value": self.value,
            "columns": list(self.columns),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EventTable:
        """Inverse of :meth:`to_dict`."""
        return cls(
            layout=d["layout"],
            code=d.get("code"),
            value=d.get("value"),
            columns=tuple(d.get("columns", ())),
        )


def infer_layout(df: pd.DataFrame, *, key: str, time: str, source: str) -> EventTable:
    rest = [c for c in df.columns if c not in (key, time)]
    if not rest:
        raise DataError(
            f"{source} has only the ID and time columns; an event table needs a code column "
            "(what happened) or measured columns"
        )
    text = [
        c
        for c in rest
        if not pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
    ]
    numeric = [c for c in rest if c not in text]
    if len(text) == 1 and len(numeric) <= 1:
        return EventTable("code", code=text[0], value=numeric[0] if numeric else None)
    if text:
        raise DataError(
            f"{source} has several text columns ({', '.join(text)}); an event table holds one "
            "code column (with at most one value column) or only numeric measured columns"
        )
    return EventTable("wide", columns=tuple(numeric))
