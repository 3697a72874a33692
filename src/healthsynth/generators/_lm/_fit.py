"""Running the training loop the way every LM generator does: threads, progress, record."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from healthsynth.generators._lm._threads import ThreadChoice, ThreadControl, torch_threads
from healthsynth.generators._lm._train import (
    CheckpointRule,
    Objective,
    PeriodicCheck,
    ProgressHook,
    Strategy,
    TrainSettings,
    train,
)

__all__ = ["fit_model"]


def fit_model(
    model: Any,
    objective: Objective,
    settings: TrainSettings,
    *,
    threads: ThreadChoice,
    verbose: bool = False,
    checks: Sequence[PeriodicCheck] = (),
    strategy: Strategy | None = None,
    checkpoint: CheckpointRule | None = None,
) -> dict[str, Any]:
    """Train ``model`` with ``threads`` torch threads (restored afterwards).

    With ``verbose``, a progress bar shows the epochs. Returns the training record, with the
    thread choice in it.
    """
    from healthsynth.generators._base import progress_bar

    progress = progress_bar(verbose)
    hooks = [ThreadControl(threads)]
    if verbose:
        hooks.append(ProgressHook(progress, settings.label))
    with progress, torch_threads(threads.n):
        return train(
            model,
            objective,
            settings,
            strategy=strategy,
            checkpoint=checkpoint,
            checks=checks,
            hooks=hooks,
        )
