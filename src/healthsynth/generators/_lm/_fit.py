"""What every LM generator does around the engine: a training run, and the fit record."""

from __future__ import annotations

import contextlib
import contextvars
import os
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from healthsynth.errors import DataError
from healthsynth.generators._lm._threads import ThreadChoice, ThreadControl, torch_threads

if TYPE_CHECKING:  # the loop imports torch: only fit_model needs it, at call time
    from healthsynth.generators._lm._train import (
        CheckpointRule,
        Objective,
        PeriodicCheck,
        Strategy,
        TrainSettings,
    )

__all__ = ["check_fit_memory", "fit_model", "fit_resources", "lent_strategy", "training_strategy"]

#: the strategy lent to every fit_model call inside ``training_strategy`` (none: the default)
_LENT: contextvars.ContextVar[Strategy | None] = contextvars.ContextVar(
    "healthsynth_training_strategy", default=None
)


@contextlib.contextmanager
def training_strategy(strategy: Strategy) -> Iterator[Strategy]:
    """Train every model fitted inside the block with ``strategy`` (e.g. data-parallel DDP).

    A generator's own ``fit`` is unchanged: this is how a scale-out runner (``healthsynth.scale``)
    hands the one training loop another way of taking steps.
    """
    token = _LENT.set(strategy)
    try:
        yield strategy
    finally:
        _LENT.reset(token)


def lent_strategy() -> Strategy | None:
    """The strategy ``training_strategy`` lends now (None outside such a block)."""
    return _LENT.get()


def _free_memory() -> int | None:
    """Bytes this machine can give now (Linux MemAvailable, else physical memory)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):
        return None


def attention_bytes(*, batch: int, tokens: int, n_head: int, n_layer: int) -> int:
    """Bytes of the attention weights one training step keeps (float32, kept for backward).

    Each layer holds a ``batch × n_head × tokens × tokens`` matrix of scores and one of
    dropped-out probabilities, plus one being built: the part of a step's memory that grows
    with the square of the sequence, and the one that runs out first on wide tables.
    """
    return 4 * batch * n_head * tokens * tokens * (2 * n_layer + 1)


def check_fit_memory(
    *, batch: int, tokens: int, n_head: int, n_layer: int, what: str, fix: str
) -> None:
    """Refuse, in one sentence, a fit whose training steps cannot fit in this machine's memory.

    ``what`` names the sequence (``"a row of 10,000 columns is 10,001 tokens"``), ``fix`` says
    what to change.
    """
    need = attention_bytes(batch=batch, tokens=tokens, n_head=n_head, n_layer=n_layer)
    free = _free_memory()
    if free is not None and need > 0.8 * free:
        raise DataError(
            f"{what}: a training step of {batch} would need about {need / 2**30:,.1f} GiB for "
            f"attention alone and this machine has {free / 2**30:,.1f} GiB free; {fix}"
        )


def fit_resources(started: float, cpu0: float) -> dict[str, Any]:
    """Wall and CPU seconds since ``started``/``cpu0``, peak memory, and versions."""
    from healthsynth.generators._folder import peak_rss_mb, runtime_info

    return {
        "fit_seconds": round(time.perf_counter() - started, 3),
        "fit_cpu_seconds": round(time.process_time() - cpu0, 3),
        "peak_rss_mb": peak_rss_mb(),
        "runtime": runtime_info(),
    }


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
    from healthsynth.generators._lm._train import ProgressHook, train

    progress = progress_bar(verbose)
    hooks: list[Any] = [ThreadControl(threads)]
    if verbose:
        hooks.append(ProgressHook(progress, settings.label))
    with progress, torch_threads(threads.n):
        return train(
            model,
            objective,
            settings,
            strategy=strategy if strategy is not None else _LENT.get(),
            checkpoint=checkpoint,
            checks=checks,
            hooks=hooks,
        )
