"""One training loop for every LM path, with seams for what later work swaps in.

The loop owns what all paths share: the seeded epoch loop, AdamW with warm-up and cosine decay
(fitted to the time budget when there is one), gradient clipping, the validation loss after
every epoch, early stopping, periodic checks that can stop training (the privacy-aware stop),
the choice of which weights to keep, and the training record. What differs is plugged in:

* an :class:`Objective` — the path's batches and loss (rows, timelines or text): it lists the
  example indices of each batch of an epoch (:meth:`Objective.plan`) and turns one such list
  into a loss (:meth:`Objective.loss`), so batch *sampling* and batch *building* are apart;
* a :class:`Strategy` — how a step is taken: the optimizer, wrapping the model, which batches a
  process sees, the backward pass and update, and summing figures over processes. Differential
  privacy (per-sample clipping and noise, Poisson-sampled batches: a strategy whose ``prepare``
  wraps model and optimizer and whose ``plan`` samples indices) and data-parallel training (a
  strategy that wraps the model for gradient averaging, gives each worker its share of
  :meth:`Objective.plan` and sums losses in ``reduce``) are strategies; the loop stays as is;
* a :class:`CheckpointRule` — which weights to keep (:class:`BestValidationLoss` by default;
  :class:`LastWeights` for a fixed schedule, as DP-SGD needs);
* :class:`PeriodicCheck` monitors that stop training when they fail (the privacy-aware stop);
* :class:`TrainHook` callbacks (the progress bar, thread control).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch

from healthsynth.generators._lm._average import Average

__all__ = [
    "BatchLoss",
    "BestValidationLoss",
    "CheckpointRule",
    "LastWeights",
    "Objective",
    "PeriodicCheck",
    "ProgressHook",
    "Strategy",
    "TrainHook",
    "TrainSettings",
    "device_of",
    "on_device",
    "train",
]


@dataclass(frozen=True)
class TrainSettings:
    """The optimisation settings every path shares.

    ``epochs`` is the most passes over the data; ``max_time`` (seconds) ends training earlier
    and, measured on the first epoch, shortens the learning-rate schedule to what fits.
    ``average_half_life`` (in epochs) validates, checks and keeps an exponential moving average
    of the weights (:class:`~._average.Average`) instead of the last step's; ``None``: the last.
    """

    epochs: int
    learning_rate: float
    weight_decay: float = 0.01
    patience: int = 12
    max_time: float | None = None
    seed: int = 0
    clip_norm: float = 1.0
    warmup_fraction: float = 0.03
    final_lr_fraction: float = 0.1
    min_improvement: float = 1e-4
    label: str = "training"
    average_half_life: float | None = None


class BatchLoss(NamedTuple):
    """A batch's mean loss, its weight in the epoch mean, and its number of target tokens."""

    loss: torch.Tensor
    weight: float
    tokens: int


class Objective(Protocol):
    """What one LM path trains on."""

    def steps_per_epoch(self) -> int:
        """Batches in one epoch."""

    def plan(self, rng: np.random.Generator) -> Sequence[np.ndarray]:
        """The training-example indices of each batch of one epoch."""

    def loss(
        self, model: torch.nn.Module, indices: np.ndarray, rng: np.random.Generator
    ) -> BatchLoss:
        """Build the batch of ``indices`` and return its loss."""

    def validation_loss(self, model: torch.nn.Module) -> float:
        """Mean loss per token on the validation examples (called in inference mode)."""


def device_of(model: torch.nn.Module) -> torch.device:
    """The device ``model``'s weights are on (its batches are built there too)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def on_device(model: torch.nn.Module, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``tensors`` moved to ``model``'s device (the same tensors when it is the CPU)."""
    dev = device_of(model)
    if dev.type == "cpu":
        return tensors
    return tuple(t.to(dev, non_blocking=True) for t in tensors)


class Strategy:
    """Single-process training with AdamW: the default, and the base of other strategies.

    ``device`` is where the weights and batches live while training (the CPU by default; a
    ``cuda`` device trains there, and the model comes back to the CPU at the end, as sampling,
    saving and the privacy checks expect).
    """

    name = "local"
    device = torch.device("cpu")

    def __init__(self, *, device: str | torch.device | None = None) -> None:
        self.device = torch.device(device or "cpu")

    def make_optimizer(self, model: torch.nn.Module, s: TrainSettings) -> torch.optim.Optimizer:
        """The optimizer over ``model``'s weights."""
        return torch.optim.AdamW(
            model.parameters(), lr=s.learning_rate, weight_decay=s.weight_decay
        )

    def prepare(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer
    ) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        """Wrap model and optimizer before training (DP-SGD and DDP wrap them here)."""
        return model, optimizer

    def plan(self, objective: Objective, rng: np.random.Generator) -> Iterable[np.ndarray]:
        """The batches this process trains on in one epoch."""
        return objective.plan(rng)

    def step(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        loss: torch.Tensor,
        s: TrainSettings,
    ) -> None:
        """One update from a batch's loss."""
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if s.clip_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), s.clip_norm)
        optimizer.step()

    def reduce(self, value: float) -> float:
        """A figure combined over processes (one process: itself)."""
        return value

    def agree(self, flag: bool) -> bool:
        """Whether any process says yes (one process: ``flag``); all stop on the same step."""
        return flag

    def record(self) -> dict[str, Any]:
        """What the strategy adds to the training record."""
        return {"strategy": self.name}


class CheckpointRule(Protocol):
    """Decides which weights training ends with."""

    def start(self, model: torch.nn.Module) -> None:
        """Called before the first epoch."""

    def observe(self, epoch: int, entry: dict[str, Any], model: torch.nn.Module) -> bool:
        """Called after each epoch's validation; True when the epoch counts as an improvement."""

    def passed_check(self, epoch: int, model: torch.nn.Module) -> None:
        """A stopping check passed on this epoch's weights."""

    def restore(self, model: torch.nn.Module, *, failed_check: int | None) -> tuple[int, float]:
        """Load the kept weights into ``model``; return their epoch and validation loss."""


class BestValidationLoss:
    """Keep the weights with the lowest validation loss.

    When a stopping check fails (the privacy-aware stop), weights past the last check that
    passed are suspect: the best weights are kept if they are not newer than that check,
    otherwise the weights the check passed on; if no check passed, the best weights from
    before the failing epoch (never the random initialisation, unless nothing else exists).
    """

    def __init__(self, *, min_improvement: float = 1e-4) -> None:
        self.min_improvement = min_improvement

    def start(self, model: torch.nn.Module) -> None:
        self.best: tuple[float, dict[str, torch.Tensor], int] = (math.inf, _snapshot(model), 0)
        self.previous = self.best
        self.safe: tuple[float, dict[str, torch.Tensor], int] | None = None
        self.last_val = math.inf

    def observe(self, epoch: int, entry: dict[str, Any], model: torch.nn.Module) -> bool:
        val = float(entry["val_nll_per_token"])
        self.last_val = val
        if val < self.best[0] - self.min_improvement:
            self.previous, self.best = self.best, (val, _snapshot(model), epoch)
            return True
        return False

    def passed_check(self, epoch: int, model: torch.nn.Module) -> None:
        self.safe = (self.last_val, _snapshot(model), epoch)

    def restore(self, model: torch.nn.Module, *, failed_check: int | None) -> tuple[int, float]:
        kept = self.best
        if failed_check is not None:
            last_pass = self.safe[2] if self.safe is not None else 0
            prior = self.previous if self.best[2] == failed_check else self.best
            if self.best[2] <= last_pass:
                kept = self.best
            elif self.safe is not None:
                kept = self.safe
            elif prior[2] > 0:
                kept = prior
            else:  # the first check failed on the first epoch: nothing better to keep
                return failed_check, self.last_val
        model.load_state_dict(kept[1])
        return kept[2], kept[0]


class LastWeights:
    """Keep the last weights: a fixed schedule, no early stopping, no choice by validation.

    DP-SGD trains this way (choosing weights by their loss on real rows would step outside the
    guarantee); so does a fit asked not to stop early. When a stopping check fails, the weights
    of the last check that passed are kept (the failing epoch's if none passed).
    """

    def start(self, model: torch.nn.Module) -> None:
        self.epoch, self.val = 0, math.nan
        self.safe: tuple[int, float, dict[str, torch.Tensor]] | None = None

    def observe(self, epoch: int, entry: dict[str, Any], model: torch.nn.Module) -> bool:
        self.epoch, self.val = epoch, float(entry["val_nll_per_token"])
        return True  # every epoch counts as progress: patience never runs out

    def passed_check(self, epoch: int, model: torch.nn.Module) -> None:
        self.safe = (epoch, self.val, _snapshot(model))

    def restore(self, model: torch.nn.Module, *, failed_check: int | None) -> tuple[int, float]:
        if failed_check is not None and self.safe is not None:
            model.load_state_dict(self.safe[2])
            return self.safe[0], self.safe[1]
        return self.epoch, self.val


@dataclass
class PeriodicCheck:
    """A check run every ``every`` epochs that stops training when it fails.

    ``check(model)`` returns a dict with at least ``passed``; the dicts go to the training
    record under ``{name}_checks`` and a failure stops training with ``stop_reason = name``.
    """

    name: str
    every: int
    check: Callable[[torch.nn.Module], dict[str, Any]]


class TrainHook:
    """Callbacks around training (each does nothing unless overridden)."""

    def on_start(self, epochs: int) -> None:
        """Training starts."""

    def on_step(self, step: int) -> None:
        """An optimizer step was taken."""

    def on_epoch(self, entry: dict[str, Any]) -> None:
        """An epoch ended (``entry`` is its history line)."""

    def record(self) -> dict[str, Any]:
        """What the hook adds to the training record."""
        return {}


class ProgressHook(TrainHook):
    """Advance a rich progress display once per epoch."""

    def __init__(self, progress: Any, label: str) -> None:
        self.progress, self.label, self.task = progress, label, None

    def on_start(self, epochs: int) -> None:
        self.task = self.progress.add_task(self.label, total=epochs)

    def on_epoch(self, entry: dict[str, Any]) -> None:
        val = entry["val_nll_per_token"]
        self.progress.update(self.task, advance=1, description=f"{self.label} (val loss {val:.3f})")


class _Schedule:
    """Warm-up, then cosine decay to ``final`` × the rate over ``total`` steps."""

    def __init__(self, total: int, s: TrainSettings) -> None:
        self.total = max(1, total)
        self.warmup = max(1, int(s.warmup_fraction * self.total))
        self.final = s.final_lr_fraction

    def __call__(self, step: int) -> float:
        done = min(step, self.total) / self.total
        cosine = self.final + (1 - self.final) * 0.5 * (1 + math.cos(math.pi * done))
        return min(1.0, (step + 1) / self.warmup) * cosine


def train(
    model: torch.nn.Module,
    objective: Objective,
    settings: TrainSettings,
    *,
    strategy: Strategy | None = None,
    checkpoint: CheckpointRule | None = None,
    checks: Sequence[PeriodicCheck] = (),
    hooks: Sequence[TrainHook] = (),
) -> dict[str, Any]:
    """Train ``model`` in place and end with the weights ``checkpoint`` keeps.

    Everything random follows ``settings.seed``: batch order and composition from a local
    numpy generator, dropout from torch's generator inside ``torch.random.fork_rng`` (the
    caller's random state is restored afterwards). Returns the training record.
    """
    run = _Run(
        model,
        objective,
        settings,
        strategy or Strategy(),
        checkpoint or BestValidationLoss(min_improvement=settings.min_improvement),
        checks,
        hooks,
    )
    for h in hooks:
        h.on_start(settings.epochs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        for epoch in range(1, settings.epochs + 1):
            stop = run.epoch(epoch)
            if stop is not None:
                run.stop_reason = stop
                break
    return run.finish()


class _Run:
    """The state of one training run (see :func:`train`)."""

    def __init__(
        self,
        model: torch.nn.Module,
        objective: Objective,
        s: TrainSettings,
        strategy: Strategy,
        checkpoint: CheckpointRule,
        checks: Sequence[PeriodicCheck],
        hooks: Sequence[TrainHook],
    ) -> None:
        self.model, self.objective, self.s = model, objective, s
        self.strategy, self.checkpoint, self.checks, self.hooks = (
            strategy,
            checkpoint,
            checks,
            hooks,
        )
        self.rng = np.random.default_rng(s.seed)
        model.to(strategy.device)
        self.steps_per_epoch = max(1, objective.steps_per_epoch())
        self.schedule = _Schedule(self.steps_per_epoch * s.epochs, s)
        optimizer = strategy.make_optimizer(model, s)
        self.lr = torch.optim.lr_scheduler.LambdaLR(optimizer, self.schedule)
        self.net, self.optimizer = strategy.prepare(model, optimizer)
        checkpoint.start(model)
        self.average = Average(model, s.average_half_life, self.steps_per_epoch)
        self.history: list[dict[str, Any]] = []
        self.logs: dict[str, list[dict[str, Any]]] = {c.name: [] for c in checks}
        self.stop_reason, self.bad_epochs = "epochs", 0
        self.failed: int | None = None
        self.step, self.tokens = 0, 0
        self.start = time.perf_counter()

    def out_of_time(self) -> bool:
        limit = self.s.max_time
        return limit is not None and time.perf_counter() - self.start > limit

    def train_epoch(self) -> tuple[float, bool]:
        """One pass over the batches; the mean training loss and whether time ran out."""
        self.net.train()
        running, seen = 0.0, 0.0
        for idx in self.strategy.plan(self.objective, self.rng):
            out = self.objective.loss(self.net, idx, self.rng)
            self.strategy.step(self.net, self.optimizer, out.loss, self.s)
            self.lr.step()
            self.average.update()
            self.step += 1
            running += float(out.loss.detach()) * out.weight
            seen += out.weight
            self.tokens += out.tokens
            for h in self.hooks:
                h.on_step(self.step)
            if self.s.max_time is not None and self.strategy.agree(self.out_of_time()):
                return running / max(seen, 1e-12), True
        return running / max(seen, 1e-12), False

    def epoch(self, epoch: int) -> str | None:
        """Train, validate and check one epoch; the reason to stop, if any."""
        train_loss, cut = self.train_epoch()
        if epoch == 1 and self.s.max_time is not None and not cut:
            # fit the schedule to the steps the time budget allows at this pace
            pace = self.strategy.reduce((time.perf_counter() - self.start) / self.steps_per_epoch)
            fits = int(0.97 * self.s.max_time / pace)
            self.schedule.total = max(self.step + 1, min(self.schedule.total, fits))
        self.net.eval()
        with self.average.applied():
            return self._judge(epoch, train_loss, cut)

    def _judge(self, epoch: int, train_loss: float, cut: bool) -> str | None:
        """Validate and check the weights in the model; the reason to stop, if any."""
        with torch.inference_mode():
            val = self.strategy.reduce(self.objective.validation_loss(self.model))
        entry = {
            "epoch": epoch,
            "train_nll_per_token": self.strategy.reduce(train_loss),
            "val_nll_per_token": val,
            "seconds": round(time.perf_counter() - self.start, 3),
        }
        self.history.append(entry)
        for h in self.hooks:
            h.on_epoch(entry)
        improved = self.checkpoint.observe(epoch, entry, self.model)
        self.bad_epochs = 0 if improved else self.bad_epochs + 1
        for c in self.checks:
            if epoch % c.every:
                continue
            result = {**c.check(self.model), "epoch": epoch}
            self.logs[c.name].append(result)
            if not result["passed"]:
                self.failed = epoch
                return c.name
            self.checkpoint.passed_check(epoch, self.model)
        if self.bad_epochs >= self.s.patience:
            return "early_stopping"
        if cut or self.strategy.agree(self.out_of_time()):
            return "max_time"
        return None

    def finish(self) -> dict[str, Any]:
        """Restore the kept weights; the training record."""
        self.average.settle()  # a rule that keeps the last weights keeps their average
        kept, kept_val = self.checkpoint.restore(self.model, failed_check=self.failed)
        self.model.to("cpu")
        self.model.eval()
        seconds = time.perf_counter() - self.start
        record: dict[str, Any] = {
            "epochs_run": len(self.history),
            "epochs_planned": self.s.epochs,
            "best_epoch": kept,
            "best_val_nll_per_token": kept_val,
            "stop_reason": self.stop_reason,
            "steps": self.step,
            "steps_planned": self.schedule.total,
            "tokens_seen": self.tokens,
            "tokens_per_second": round(self.tokens / max(seconds, 1e-9), 1),
            "history": self.history,
            **{f"{name}_checks": log for name, log in self.logs.items()},
            "train_seconds": round(seconds, 3),
            "device": str(self.strategy.device),
            "average_half_life_epochs": self.s.average_half_life,
            **self.strategy.record(),
        }
        for h in self.hooks:
            record.update(h.record())
        return record


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
