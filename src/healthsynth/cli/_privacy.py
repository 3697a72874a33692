"""``fit``'s differential-privacy flags: checked before any data is read, and reported after."""

from __future__ import annotations

import math
from typing import Any

from healthsynth.cli._params import flag_of, setting_names
from healthsynth.errors import ParameterError

__all__ = ["check_dp_flags", "dp_line"]


def check_dp_flags(given: dict[str, Any], generator: str, cls: type) -> None:
    """Refuse differential-privacy flags that cannot work, before any data is read."""
    flags = {p: v for p, v in given.items() if p.startswith("dp_") and v is not None}
    if not flags:
        return
    from healthsynth.generators.privacy import ACCOUNTANTS, DP_GENERATORS

    if "dp_epsilon" not in setting_names(cls):
        raise ParameterError(
            f"generator '{generator}' cannot train with differential privacy "
            f"({flag_of(next(iter(flags)))}); use {' or '.join(DP_GENERATORS)}, or leave it out"
        )
    if "dp_epsilon" not in flags:
        raise ParameterError(
            f"{flag_of(next(iter(flags)))} goes with --dp-epsilon (the privacy budget); give "
            "--dp-epsilon too, or leave it out"
        )
    for param in ("dp_epsilon", "dp_delta", "dp_max_grad_norm"):
        value = flags.get(param)
        if value is not None and not (math.isfinite(value) and value > 0):
            what = " (the privacy budget ε, such as 1, 3 or 8)" if param == "dp_epsilon" else ""
            raise ParameterError(f"{flag_of(param)} must be a positive number{what}; got {value:g}")
    if flags.get("dp_delta", 0) >= 1:
        raise ParameterError(
            f"--dp-delta must be below 1, and well below 1/n (n: the rows or patients); got "
            f"{flags['dp_delta']:g}"
        )
    if flags.get("dp_accountant", ACCOUNTANTS[0]) not in ACCOUNTANTS:
        raise ParameterError(
            f"--dp-accountant must be one of {', '.join(ACCOUNTANTS)}; got "
            f"'{flags['dp_accountant']}'"
        )


def dp_line(record: dict[str, Any]) -> str | None:
    """One line on the privacy a DP fit spent (None for a fit without differential privacy)."""
    dp = record.get("dp")
    if not isinstance(dp, dict):
        return None
    return (
        f"differential privacy: ε = {dp['epsilon']:.3g} spent (budget {dp['epsilon_target']:g}), "
        f"δ = {dp['delta']:.2g}, {dp['accountant']} accountant, noise multiplier "
        f"{dp['noise_multiplier']:.3g}, {dp['steps']} steps; what lies outside the guarantee is "
        "listed in training.json (see docs/privacy.md)"
    )
