"""Prices per million tokens, set by the user (none are shipped: prices change)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from healthsynth.errors import ParameterError

__all__ = ["Price", "load_prices"]


@dataclass(frozen=True)
class Price:
    """US dollars per million input (prompt) and output (completion) tokens."""

    input_per_million: float
    output_per_million: float

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        """The price of one request."""
        return (tokens_in * self.input_per_million + tokens_out * self.output_per_million) / 1e6


def load_prices(source: str | Path | Mapping[str, Any] | None) -> dict[str, Price]:
    """Read a price table: a mapping or a JSON/YAML file of ``model: [input, output]``.

    Each value is ``[input_per_million, output_per_million]`` or a mapping with those two keys.
    """
    if source is None:
        return {}
    where = "prices"
    if isinstance(source, (str, Path)):
        where = f"price file {source}"
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as e:
            raise ParameterError(f"cannot read the {where} ({e.strerror})") from None
        try:
            if str(source).endswith((".yaml", ".yml")):
                import yaml

                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
        except Exception as e:  # noqa: BLE001 - any parse failure is the user's file
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ParameterError(f"the {where} cannot be parsed ({first})") from None
    else:
        data = source
    if not isinstance(data, Mapping):
        raise ParameterError(f"the {where} must map model names to [input, output] prices")
    out = {}
    for model, value in data.items():
        if isinstance(value, Mapping):
            value = [value.get("input_per_million"), value.get("output_per_million")]
        ok = (
            isinstance(value, (list, tuple))
            and len(value) == 2
            and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in value
            )
        )
        if not ok:
            raise ParameterError(
                f"the {where} gives model {model!r} the price {value!r}; give "
                "[input_per_million, output_per_million] in US dollars, both >= 0"
            )
        out[str(model)] = Price(float(value[0]), float(value[1]))
    return out
