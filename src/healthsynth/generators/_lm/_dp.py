"""Differentially private training for the LM paths: DP-SGD with Opacus, as an engine strategy.

What the guarantee covers: with ``dp_epsilon`` set, every optimizer step of the shared loop
(:mod:`._train`) is a step of DP-SGD (Abadi et al. 2016): batches are Poisson samples (every
training example joins each batch independently with probability ``q``), each example's
gradient is clipped to norm ``max_grad_norm`` (per-example gradients from Opacus'
``GradSampleModule``), and Gaussian noise of standard deviation ``noise_multiplier ×
max_grad_norm`` is added to their sum (Opacus' ``DPOptimizer``, in its secure mode against
floating-point attacks). The noise multiplier is calibrated before training so that the planned
steps spend exactly the budget (ε, δ) under the chosen accountant (Opacus' RDP or PRV
accountant); the accountant follows every step taken, and the record holds what was spent.

The unit of privacy is one training example: a row for tabular-lm, a patient (static
attributes and every event) for timeline-lm. The objective's batch loss must be the mean over
examples of a loss that depends on that example alone (:meth:`PrivateObjective.loss` calls the
objective's ``example_loss``), so that removing one example changes the clipped sum by one term.

Three things keep the guarantee honest:

* the Poisson draws and the noise come from the operating system's entropy, not from the
  generator's ``seed``: a known seed would let anyone replay the noise and the batches, and
  subtract them. A DP fit is therefore not reproducible;
* training follows a fixed schedule and ends with the last weights (:class:`LastWeights`):
  no validation split, no early stopping and no privacy-aware stop, which would choose the
  weights by looking at real rows outside DP-SGD;
* an empty Poisson batch still takes a step of pure noise, as the accounting assumes.

What happens to the real rows before training (vocabularies, bins, observed ranges, the
schema) is outside DP-SGD: each generator lists it in the record (``dp.outside_guarantee``)
and ``docs/privacy.md`` explains it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from healthsynth.errors import ParameterError

__all__ = [
    "ACCOUNTANTS",
    "DP_EPOCHS",
    "DP_GENERATORS",
    "DP_LEARNING_RATE",
    "OUTSIDE_GUARANTEE",
    "PrivacyBudget",
    "check_budget",
    "default_delta",
    "dp_schedule",
    "fit_private",
]

#: The accountants that can calibrate the noise and count the budget (Opacus' names).
ACCOUNTANTS = ("rdp", "prv")
#: Epochs of a DP fit when none are given.
DP_EPOCHS = 30
#: The learning rate of a DP fit when none is given.
DP_LEARNING_RATE = 5e-3

#: The generators that can train with differential privacy (their ``dp_epsilon`` setting).
DP_GENERATORS = ("tabular-lm", "timeline-lm")

#: What each path does with the real rows outside DP-SGD (in the record, and docs/privacy.md).
OUTSIDE_GUARANTEE: dict[str, list[str]] = {
    "tabular-lm": [
        "schema: column kinds, categories, precision and missingness inferred from the rows "
        "(unless a schema was given)",
        "vocabulary: the categories seen, and every distinct value of a column with few "
        "distinct values",
        "bins: quantile bin and sub-interval edges of each continuous column, including its "
        "observed minimum and maximum",
        "the number of rows, which sets the sampling rate",
        "rules: an always-on rule that no row satisfies is refused before training",
        "column orders (column_order='learn'): the pairs of number or date columns ordered in "
        "every row (column_order='off' or orders you give avoid it)",
        "exact sums and missing-together groups (relations='learn'): the triples of columns "
        "with b = a + m·c in every row, the columns missing on the same rows "
        "(relations='off' avoids it)",
    ],
    "timeline-lm": [
        "schema of the patients table: kinds, categories and precision inferred from it",
        "vocabulary: the event items seen, the items with a presence flag (the most frequent)",
        "bins: quantile edges of the static numbers, lab values and time gaps, including "
        "observed minimum and maximum",
        "the longest timeline in tokens and the number of patients, which sets the sampling rate",
        "event-log structure (learn_structure): once-only, terminal and always-present items, "
        "terminal items that fall on the end of follow-up, items always on one day, "
        "each item's most count per patient and its range of days since the first event, "
        "exact extremes of the real timelines (learn_structure=False or a given structure "
        "avoids it)",
    ],
}


@dataclass(frozen=True)
class PrivacyBudget:
    """A checked (ε, δ) budget, the clipping norm, and the accountant that counts it."""

    epsilon: float
    delta: float
    max_grad_norm: float
    accountant: str
    n_examples: int
    unit: str


def default_delta(n: int) -> float:
    """δ when none is given: a tenth of 1/n, one order of magnitude below one example's share."""
    return 0.1 / max(n, 1)


def check_budget(
    *,
    epsilon: Any,
    delta: Any,
    max_grad_norm: Any,
    accountant: Any,
    n_examples: int,
    unit: str,
) -> PrivacyBudget | None:
    """The budget a generator's ``dp_*`` settings ask for (``None``: no DP), or one sentence.

    ``delta`` defaults to :func:`default_delta`; a δ of at least 1/n is allowed with a warning
    (a mechanism that publishes one example in full meets such a δ).
    """
    from healthsynth.generators._base import warn

    if epsilon is None:
        for name, value in (("dp_delta", delta), ("dp_max_grad_norm", max_grad_norm)):
            if value is not None:
                raise ParameterError(
                    f"parameter '{name}' is set but 'dp_epsilon' is not; give dp_epsilon to "
                    "train with differential privacy, or leave it out"
                )
        return None
    eps = _positive(epsilon, "dp_epsilon", "the privacy budget ε, such as 1, 3 or 8")
    if delta is None:
        d = default_delta(n_examples)
    else:
        d = _number(delta, "dp_delta")
        if not 0 < d < 1:
            raise ParameterError(
                f"parameter 'dp_delta' must be above 0 and below 1 (well below 1/n = "
                f"{1 / n_examples:.2g} for {n_examples} {unit}); got {delta!r}"
            )
        if d >= 1 / n_examples:
            warn(
                f"dp_delta = {d:g} is not below 1/n = {1 / n_examples:.3g} ({n_examples} "
                f"{unit}): a mechanism that reveals one of the {unit} in full meets such a δ; "
                f"use a δ below {default_delta(n_examples):.2g}",
                stacklevel=4,
            )
    norm = 1.0 if max_grad_norm is None else _positive(max_grad_norm, "dp_max_grad_norm", "a norm")
    if accountant not in ACCOUNTANTS:
        raise ParameterError(
            f"parameter 'dp_accountant' must be one of {', '.join(ACCOUNTANTS)}; got {accountant!r}"
        )
    return PrivacyBudget(eps, d, norm, str(accountant), int(n_examples), unit)


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(f"parameter '{name}' must be a number; got {value!r}")
    return float(value)


def _positive(value: Any, name: str, what: str) -> float:
    v = _number(value, name)
    if not (math.isfinite(v) and v > 0):
        hint = ""
        if name == "dp_epsilon":
            hint = "; leave it out to train without differential privacy"
        raise ParameterError(
            f"parameter '{name}' must be a positive finite number ({what}){hint}; got {value!r}"
        )
    return v


def dp_schedule(n: int, batch_size: int | None, epochs: int | None) -> tuple[int, int]:
    """Expected batch size and epochs of a DP fit on ``n`` examples (settings win when given).

    To a first approximation the signal-to-noise ratio of DP-SGD at a fixed (ε, δ) depends on
    ε·n, not on the batch size or the epochs (the noise multiplier grows with both), so DP
    fits take large Poisson batches (half the examples, 16 to 256) and few steps
    (:data:`DP_EPOCHS` epochs, about 60 steps on a small table): as good, and far cheaper
    per epoch, than many small steps (measured on survival/gbsg and MASS/Pima.tr; see
    ``docs/privacy.md``).
    """
    batch = batch_size or int(np.clip(n // 2, 16, 256))
    return min(batch, n), epochs or DP_EPOCHS


def fit_private(
    model: Any,
    objective: Any,
    settings: Any,
    *,
    budget: PrivacyBudget,
    batch: float,
    threads: Any,
    outside: list[str],
    verbose: bool = False,
    sigma: float | None = None,
) -> dict[str, Any]:
    """Train ``model`` with DP-SGD for ``settings.epochs`` epochs of expected batch ``batch``.

    The noise is calibrated first (a budget that cannot be met is refused before any step),
    unless ``sigma`` gives the multiplier already calibrated for this budget and schedule.
    Returns the training record; ``dp`` holds the privacy spent, how, and ``outside`` (what
    the path did with the real rows outside DP-SGD).
    """
    from healthsynth.generators._library import require

    require("opacus", package="opacus", extra="dp", what="training with differential privacy")
    from healthsynth.generators._lm._dp_sgd import train_private

    record = train_private(
        model,
        objective,
        settings,
        budget=budget,
        batch=batch,
        threads=threads,
        verbose=verbose,
        sigma=sigma,
    )
    record["dp"]["outside_guarantee"] = list(outside)
    return record
