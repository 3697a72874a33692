"""How ``tabular-lm`` trains: the DP budget, the schedule, and the from-scratch or text model.

Each function takes the :class:`~healthsynth.generators.tabular_lm.TabularLM` being fitted
(its settings, and the codec and schema :meth:`fit` has set) and sets ``model_`` (and ``text_``)
as it trains.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.errors import ParameterError
from healthsynth.generators.tabular_lm._prior import pretrained_path
from healthsynth.generators.tabular_lm._sampling import sample_rows

#: Fine-tuning rates: a large pretrained LM (``base_model``), and a small healthsynth ``prior``.
BASE_MODEL_LR, PRIOR_LR = 1e-4, 5e-4
#: Most epochs of fine-tuning a prior (early stopping on validation loss usually ends sooner).
PRIOR_EPOCHS = 30

__all__ = ["dp_budget", "fit_slots", "fit_text", "schedule"]


def dp_budget(gen: Any, n_rows: int) -> Any:
    """The differential-privacy budget asked for (None: none), checked before any work."""
    from healthsynth.generators._lm._dp import check_budget

    budget = check_budget(
        epsilon=gen.dp_epsilon,
        delta=gen.dp_delta,
        max_grad_norm=gen.dp_max_grad_norm,
        accountant=gen.dp_accountant,
        n_examples=n_rows,
        unit="rows",
    )
    if budget is not None and pretrained_path(gen) is not None:
        raise ParameterError(
            "differential privacy (dp_epsilon) trains the from-scratch model only; leave "
            "out base_model / prior or dp_epsilon"
        )
    return budget


def schedule(gen: Any, n_train: int, budget: Any) -> tuple[int, int, float]:
    """Batch size, epochs and learning rate: the settings, else chosen from the rows.

    Without DP: about 3,000 steps (8–300 epochs; early stopping usually ends sooner).
    With DP-SGD: large Poisson batches and few steps
    (:func:`healthsynth.generators._lm._dp.dp_schedule`).
    """
    if budget is None:
        batch_size = gen.batch_size or int(np.clip(n_train // 16, 16, 256))
        steps_per_epoch = math.ceil(n_train / batch_size)
        epochs = gen.epochs or int(np.clip(math.ceil(3000 / steps_per_epoch), 8, 300))
        if pretrained_path(gen) is None:
            lr = gen.learning_rate or 2e-3
        else:
            lr = gen.learning_rate or (BASE_MODEL_LR if gen.prior is None else PRIOR_LR)
        return batch_size, epochs, lr
    from healthsynth.generators._lm._dp import DP_LEARNING_RATE, dp_schedule

    batch_size, epochs = dp_schedule(n_train, gen.batch_size, gen.epochs)
    return batch_size, epochs, gen.learning_rate or DP_LEARNING_RATE


def train_settings(gen: Any, epochs: int, lr: float, *, weight_decay: float, label: str) -> Any:
    """The training loop's settings: these epochs and rate, the generator's stop and seed."""
    from healthsynth.generators._lm._train import TrainSettings

    return TrainSettings(
        epochs=epochs,
        learning_rate=lr,
        weight_decay=weight_decay,
        patience=gen.patience,
        max_time=gen.max_time,
        seed=gen.seed,
        label=label,
    )


def checkpoint(gen: Any) -> Any:
    """Which weights training ends with: the best by validation loss, or the last."""
    if gen.early_stopping:
        return None  # the loop's default, BestValidationLoss
    from healthsynth.generators._lm._train import LastWeights

    return LastWeights()


def stop_checks(gen: Any, train_df: pd.DataFrame, val_df: pd.DataFrame) -> list[Any]:
    """The privacy-aware stop, when asked for."""
    if not gen.privacy_stop:
        return []
    from healthsynth.generators._lm._train import PeriodicCheck
    from healthsynth.generators.tabular_lm._privacy import privacy_check

    def sample(model: Any, n: int, seed: int) -> pd.DataFrame:
        return sample_rows(gen, n, {}, seed=seed)  # model is gen.model_, being trained

    check = privacy_check(sample, gen.schema_, train_df, val_df, seed=gen.seed)
    return [PeriodicCheck("privacy", gen.privacy_every, check)]


def fit_slots(
    gen: Any,
    train_df: pd.DataFrame,
    val_df: pd.DataFrame,
    rng: np.random.Generator,
    epochs: int,
    batch_size: int,
    lr: float,
    dropout: float,
    *,
    budget: Any = None,
) -> dict[str, Any]:
    """Train the from-scratch GPT on slot tokens (with DP-SGD under a ``budget``)."""
    from healthsynth.generators._lm._fit import check_fit_memory, fit_model
    from healthsynth.generators._lm._threads import choose_threads
    from healthsynth.generators.tabular_lm._slot_model import TableObjective, build_model

    codec = gen.codec_
    check_fit_memory(
        batch=batch_size,
        tokens=codec.n_slots + 1,
        n_head=gen.n_head,
        n_layer=gen.n_layer,
        what=(
            f"the table has {len(gen.schema_.modelled):,} modelled columns, "
            f"{codec.n_slots + 1:,} tokens per row"
        ),
        fix="model fewer columns (drop or combine some), or give a smaller batch_size",
    )
    objective = TableObjective(
        codec,
        codec.encode(train_df, rng),
        codec.encode(val_df, rng),
        batch_size=batch_size,
        perm_prob=gen.perm_prob,
        target_share=gen.target_share,
    )
    gen.model_ = build_model(
        codec,
        n_embd=gen.n_embd,
        n_layer=gen.n_layer,
        n_head=gen.n_head,
        dropout=dropout,
        seed=gen.seed,
    )
    work = gen.model_.n_parameters() * batch_size * codec.n_slots
    settings = train_settings(gen, epochs, lr, weight_decay=0.01, label="training")
    if budget is not None:
        from healthsynth.generators._lm._dp import OUTSIDE_GUARANTEE, fit_private

        return fit_private(
            gen.model_,
            objective,
            settings,
            budget=budget,
            batch=batch_size,
            threads=choose_threads(requested=gen.threads, work=work),
            verbose=gen.verbose,
            outside=OUTSIDE_GUARANTEE[gen.name],
        )
    return fit_model(
        gen.model_,
        objective,
        settings,
        threads=choose_threads(requested=gen.threads, work=work),
        verbose=gen.verbose,
        checks=stop_checks(gen, train_df, val_df),
        checkpoint=checkpoint(gen),
    )


def fit_text(
    gen: Any, train_df: pd.DataFrame, val_df: pd.DataFrame, batch_size: int, lr: float
) -> dict[str, Any]:
    """Fine-tune the pretrained ``base_model`` (or the ``prior``) on rows written as text.

    A prior was pretrained here on a few hundred rows per table, so it is fine-tuned longer
    and faster than a large pretrained LM: up to :data:`PRIOR_EPOCHS` epochs with early
    stopping, at :data:`PRIOR_LR`.
    """
    from healthsynth.generators._lm._fit import fit_model
    from healthsynth.generators._lm._threads import choose_threads
    from healthsynth.generators.tabular_lm._text import TextLM, TextObjective

    gen.text_ = TextLM.from_base(pretrained_path(gen), gen.codec_, gen.schema_)
    gen.model_ = gen.text_.model
    batch = gen.batch_size or 8
    epochs = gen.epochs or (3 if gen.prior is None else PRIOR_EPOCHS)
    objective = TextObjective(
        gen.text_, train_df, val_df, batch_size=batch, perm_prob=gen.perm_prob
    )
    n_params = sum(p.numel() for p in gen.model_.parameters())
    record = fit_model(
        gen.model_,
        objective,
        train_settings(gen, epochs, lr, weight_decay=0.0, label="fine-tuning"),
        threads=choose_threads(requested=gen.threads, work=n_params * batch * 32),
        verbose=gen.verbose,
        checks=stop_checks(gen, train_df, val_df),
        checkpoint=checkpoint(gen),
    )
    return {**record, "encoding": "text", "batch_size": batch}
