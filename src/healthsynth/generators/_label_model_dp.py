"""The label model under differential privacy: the same regression, trained with DP-SGD.

**What.** With ``dp_epsilon`` set, tabular-lm's label model (:mod:`._label_model`) is not
fitted by scikit-learn on the real rows but trained with DP-SGD on the engine's private loop
(:func:`healthsynth.generators._lm._dp_sgd.train_private`: Poisson batches, per-example
clipping, calibrated Gaussian noise, Opacus' accountant). The model is the same logistic
regression (a linear layer and a softmax), so a DP fit saves and samples exactly like a
non-private one.

**The budget.** The user's (ε, δ) is split before any training: the generator's DP-SGD gets
``1 − DP_LABEL_SHARE`` of ε and half of δ, the regression ``DP_LABEL_SHARE`` of ε and the other
half of δ. The two mechanisms see the same rows, so their costs add up (basic composition);
the record lists both parts and their sum, which never exceeds the budget. A regression with a
few dozen weights needs far less noise than the generator's network for the same ε, which is
why it gets the smaller part (docs/privacy.md has the measurements).

**What it reads.** The scale of each number (its mean and standard deviation) and the
categories come from rows sampled from the already trained DP generator, which is
post-processing and costs no budget; the real rows enter only through DP-SGD, apart from what
the generator's own fit already lists outside the guarantee (the vocabulary, which holds the
target's classes, and the number of rows, which sets the sampling rate).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.errors import ParameterError
from healthsynth.generators._label_model import (
    LabelModel,
    _plain,
    design_and_codes,
    feature_states,
)

__all__ = [
    "DP_LABEL_EPOCHS",
    "DP_LABEL_LEARNING_RATE",
    "DP_LABEL_SHARE",
    "DP_LABEL_SYNTHETIC_ROWS",
    "LabelPlan",
    "fit_private_label_model",
    "plan_private_label_model",
]

#: The share of ε (and half of δ) the label model's DP-SGD spends.
DP_LABEL_SHARE = 0.25
#: Epochs of the regression's DP-SGD (Poisson batches of half the rows, 16 to 256).
DP_LABEL_EPOCHS = 30
#: The regression's learning rate (AdamW, weights starting at zero).
DP_LABEL_LEARNING_RATE = 0.05
#: Rows sampled from the DP generator to set each number's scale.
DP_LABEL_SYNTHETIC_ROWS = 500


@dataclass(frozen=True)
class LabelPlan:
    """The two budgets of a DP fit with a label model, planned before training."""

    generator: Any  # PrivacyBudget of the generator's DP-SGD
    label: Any  # PrivacyBudget of the regression's DP-SGD
    batch: int
    sigma: float


def _labelled(real: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    target = schema.target
    assert target is not None
    return real[real[target].notna()]


def plan_private_label_model(budget: Any, real: pd.DataFrame, schema: Schema) -> LabelPlan:
    """Split ``budget`` between the generator and the regression; refuse a split that fails.

    Raises :class:`ParameterError` (one sentence) when the regression's part cannot be met
    within :data:`DP_LABEL_EPOCHS` epochs; nothing is trained before this check.
    """
    from healthsynth.generators._lm._dp import dp_schedule
    from healthsynth.generators._lm._dp_sgd import noise_multiplier

    n = len(_labelled(real, schema))
    generator = replace(
        budget, epsilon=budget.epsilon * (1 - DP_LABEL_SHARE), delta=budget.delta / 2
    )
    label = replace(
        budget, epsilon=budget.epsilon * DP_LABEL_SHARE, delta=budget.delta / 2, n_examples=n
    )
    batch, epochs = dp_schedule(n, None, DP_LABEL_EPOCHS)
    q = min(1.0, batch / n)
    steps = max(1, round(1 / q)) * epochs
    try:
        sigma = noise_multiplier(label, sample_rate=q, steps=steps, epochs=epochs, batch=q * n)
    except ParameterError:
        raise ParameterError(
            f"the label model's part of the privacy budget (ε = {label.epsilon:.3g}, "
            f"{DP_LABEL_SHARE:.0%} of dp_epsilon) cannot be met on {n} labelled rows within "
            f"{epochs} epochs; raise dp_epsilon or leave the label model off (label_model=False)"
        ) from None
    return LabelPlan(generator, label, batch, sigma)


class _RegressionObjective:
    """Cross-entropy of a linear softmax model, one term per labelled row (DP-SGD's form)."""

    def __init__(self, x: np.ndarray, codes: np.ndarray) -> None:
        import torch

        self.train = torch.tensor(x, dtype=torch.float32)
        self.codes = torch.tensor(codes, dtype=torch.long)

    def example_loss(self, model: Any, indices: np.ndarray, rng: np.random.Generator) -> Any:
        import torch

        from healthsynth.generators._lm._train import BatchLoss

        idx = torch.as_tensor(indices)
        loss = torch.nn.functional.cross_entropy(model(self.train[idx]), self.codes[idx])
        return BatchLoss(loss, float(len(indices)), int(len(indices)))


def fit_private_label_model(
    real: pd.DataFrame,
    schema: Schema,
    synthetic: pd.DataFrame,
    plan: LabelPlan,
    *,
    threads: Any,
) -> tuple[LabelModel, dict[str, Any]]:
    """Train the regression with DP-SGD on ``real``'s labelled rows under ``plan.label``.

    ``synthetic`` (rows of the DP generator) sets the numbers' scale. Returns the model and
    the privacy record of its training (ε spent, noise multiplier, sampling rate, steps).
    """
    import torch

    from healthsynth.generators._lm._dp import fit_private
    from healthsynth.generators._lm._train import TrainSettings

    rows = _labelled(real, schema)
    features = feature_states(synthetic, schema)
    x, codes, classes = design_and_codes(rows, schema, features)
    model = torch.nn.Linear(x.shape[1], len(classes))
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    settings = TrainSettings(
        epochs=DP_LABEL_EPOCHS,
        learning_rate=DP_LABEL_LEARNING_RATE,
        weight_decay=0.0,
        warmup_fraction=0.0,
        label="label model",
    )
    record = fit_private(
        model,
        _RegressionObjective(x, codes),
        settings,
        budget=plan.label,
        batch=plan.batch,
        threads=threads,
        outside=[],
        sigma=plan.sigma,
    )
    dp = record["dp"]
    part = {
        k: dp[k]
        for k in (
            "epsilon",
            "delta",
            "noise_multiplier",
            "sample_rate",
            "expected_batch_size",
            "steps",
            "n_examples",
        )
    }
    part["epsilon_target"] = plan.label.epsilon
    part["what"] = "logistic regression of the target on the other columns (the label model)"
    weight = model.weight.detach().numpy().astype(float)
    bias = model.bias.detach().numpy().astype(float)
    target = schema.target
    assert target is not None
    state = {
        "target": target,
        "features": features,
        "classes": [_plain(v) for v in classes],
        "coef": weight.tolist(),
        "intercept": bias.tolist(),
        "C": None,
        "dp": True,
    }
    return LabelModel(state), part
