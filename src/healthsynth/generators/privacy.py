"""Differential privacy of the LM generators, for tools built on healthsynth (its CLI among them).

* :data:`DP_GENERATORS` — the generators that can train with DP-SGD (``dp_epsilon``);
* :data:`ACCOUNTANTS` — the accountants that calibrate the noise and count the budget;
* :data:`OUTSIDE_GUARANTEE` — per generator, what it does with the real rows outside DP-SGD;
* :func:`default_delta` — δ when none is given (0.1/n).

``docs/privacy.md`` says what the guarantee covers and what it does not.
"""

from healthsynth.generators._lm._dp import (
    ACCOUNTANTS,
    DP_GENERATORS,
    OUTSIDE_GUARANTEE,
    default_delta,
)

__all__ = ["ACCOUNTANTS", "DP_GENERATORS", "OUTSIDE_GUARANTEE", "default_delta"]
