"""DP-SGD on the shared loop: Opacus' per-example gradients, clipping, noise and accountant.

See :mod:`._dp` for what the guarantee covers; this module needs torch and opacus.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from healthsynth.errors import ParameterError
from healthsynth.generators._lm._train import BatchLoss, Objective, Strategy, TrainSettings

if TYPE_CHECKING:  # _dp calls this module: only the type crosses back
    from healthsynth.generators._lm._dp import PrivacyBudget

__all__ = ["DPStrategy", "PrivateObjective", "noise_multiplier", "train_private"]

#: Most noise per step that is still worth training with: a noise multiplier above the expected
#: batch size puts more noise on the mean gradient (per coordinate) than the clipping norm.
_MAX_NOISE_PER_EXAMPLE = 1.0
#: RDP orders searched: Opacus' defaults (up to 63) and higher ones, which give the tighter
#: bound at large ε (Opacus warns "optimal order is the largest alpha" otherwise)
_ALPHAS = (
    [1 + x / 10.0 for x in range(1, 100)]
    + list(range(12, 64))
    + [
        *range(64, 256, 8),
        *range(256, 1025, 64),
    ]
)


def _accountant_options(accountant: str) -> dict[str, Any]:
    return {"alphas": _ALPHAS} if accountant == "rdp" else {}


@contextmanager
def _quiet_orders() -> Iterator[None]:
    """Silence Opacus' note that the best RDP order is at the end of the range.

    The search for the noise multiplier tries extreme multipliers on its way, where the best
    order lies outside any fixed range; the bound stays valid (only looser), and the range
    above already reaches order 1,024.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order is the", category=UserWarning)
        yield


def noise_multiplier(
    budget: PrivacyBudget, *, sample_rate: float, steps: int, epochs: int, batch: float
) -> float:
    """The noise multiplier that spends exactly ``budget`` over ``steps`` Poisson steps.

    Raises :class:`ParameterError` when the budget cannot be met within the planned epochs with
    noise that still lets the model learn (a multiplier above the expected batch size).
    """
    from opacus.accountants.utils import get_noise_multiplier

    def search(options: dict[str, Any]) -> float:
        with _quiet_orders():
            return float(
                get_noise_multiplier(
                    target_epsilon=budget.epsilon,
                    target_delta=budget.delta,
                    sample_rate=sample_rate,
                    steps=steps,
                    accountant=budget.accountant,
                    epsilon_tolerance=min(0.01, 0.01 * budget.epsilon),
                    **options,
                )
            )

    try:
        if budget.accountant == "rdp":
            sigma = search({"alphas": _orders_near_best(search, budget, sample_rate, steps)})
        else:
            sigma = search({})
    except ValueError:  # Opacus gives up above a multiplier of 10^6
        sigma = math.inf
    if sigma > _MAX_NOISE_PER_EXAMPLE * batch:
        need = "more than 10^6" if math.isinf(sigma) else f"{sigma:.3g}"
        raise ParameterError(
            f"the privacy budget ε = {budget.epsilon:g} (δ = {budget.delta:.2g}) cannot be met "
            f"within {epochs} epochs of batches of about {batch:.0f} of {budget.n_examples} "
            f"{budget.unit}: it needs a noise multiplier of {need}, more than the batch size, so "
            "the noise would drown every update; raise dp_epsilon, lower epochs, or train on "
            f"more {budget.unit}"
        )
    return sigma


#: A coarse grid of RDP orders for a first, cheap calibration (see _orders_near_best).
_COARSE_ALPHAS = [1.25, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 512, 1024]


def _orders_near_best(
    search: Any, budget: PrivacyBudget, sample_rate: float, steps: int
) -> list[float]:
    """The orders of :data:`_ALPHAS` within a factor of 2 of the best one near the answer.

    The search for the noise multiplier evaluates ε about a dozen times, and Opacus' RDP of a
    fractional order is a slow series: over all 250 orders a calibration took seconds, most
    of a small table's DP fit. A first search on a coarse grid finds the multiplier roughly;
    the best order there (over every order) is where the bound is tight, so the final search
    needs only the orders around it. Any order gives a valid bound, so a subset can only make
    the calibrated noise a little larger than the full search's, never the spent ε larger.
    """
    from opacus.accountants import RDPAccountant

    rough = search({"alphas": _COARSE_ALPHAS})
    acc = RDPAccountant()
    acc.history = [(rough, sample_rate, steps)]
    with _quiet_orders():
        _, best = acc.get_privacy_spent(delta=budget.delta, alphas=_ALPHAS)
    return [a for a in _ALPHAS if best / 2 <= a <= best * 2]


class PrivateObjective:
    """An objective as DP-SGD trains it: Poisson steps, per-example losses, no validation.

    ``steps_per_epoch`` is ``round(1 / q)``, so an epoch sees each example once on average;
    :meth:`loss` is the objective's ``example_loss`` (the mean over the batch of each example's
    own loss); there are no validation examples, so :meth:`validation_loss` is NaN (``null`` in
    the record).
    """

    def __init__(self, objective: Any, *, sample_rate: float) -> None:
        if not hasattr(objective, "example_loss"):
            raise TypeError(f"{type(objective).__name__} has no example_loss for DP-SGD")
        self.objective, self.sample_rate = objective, sample_rate

    def steps_per_epoch(self) -> int:
        return max(1, round(1 / self.sample_rate))

    def plan(self, rng: np.random.Generator) -> list[np.ndarray]:
        raise RuntimeError("DP-SGD draws its own Poisson batches (DPStrategy.plan)")

    def loss(self, model: Any, indices: np.ndarray, rng: np.random.Generator) -> BatchLoss:
        out: BatchLoss = self.objective.example_loss(model, indices, rng)
        return out

    def validation_loss(self, model: Any) -> float:
        return math.nan


def _register_conv1d() -> None:
    """Per-example gradients of the GPT core's projection (``x @ W + b``), for Opacus."""
    from opacus.grad_sample import register_grad_sampler

    from healthsynth.generators._lm._model import _Conv1D

    @register_grad_sampler(_Conv1D)
    def _conv1d_grad_sample(
        layer: _Conv1D, activations: list[torch.Tensor], backprops: torch.Tensor
    ) -> dict[torch.nn.Parameter, torch.Tensor]:
        a = activations[0].to(backprops.dtype)
        return {
            layer.weight: torch.einsum("n...i,n...j->nij", a, backprops),
            layer.bias: torch.einsum("n...k->nk", backprops),
        }


def _secret_seed() -> int:
    return int.from_bytes(os.urandom(8), "little") >> 1


class DPStrategy(Strategy):
    """DP-SGD: Poisson-sampled batches, per-example clipping, calibrated Gaussian noise.

    Parameters
    ----------
    budget
        The checked budget (see :func:`check_budget`).
    sigma
        The noise multiplier (see :func:`noise_multiplier`).
    sample_rate
        The Poisson sampling rate ``q`` (expected batch size / examples).
    steps_planned
        Steps the noise was calibrated for.
    data_parallel
        A data-parallel strategy lent to the fit (``rank``, ``world``, ``reduce``, ``agree``;
        :class:`healthsynth.scale._ddp.DataParallel`), or None (one process). With one, each of
        the ``world`` workers owns the examples ``rank, rank + world, …`` and draws each of them
        with probability ``q`` at every step, so the union of the workers' draws is the
        Poisson batch of one process; each worker clips its examples' gradients, only worker 0
        adds the noise, and the sums are averaged over the workers (Opacus's
        ``DistributedDPOptimizer``), which is the single-process update. The accounting is
        therefore unchanged. A worker whose draw is empty still takes the step (a stand-in
        example whose loss is multiplied by zero, so its clipped gradient is exactly zero),
        because every worker must join every step's gradient exchange.
    """

    name = "dp-sgd"

    def __init__(
        self,
        budget: PrivacyBudget,
        *,
        sigma: float,
        sample_rate: float,
        steps_planned: int,
        data_parallel: Strategy | None = None,
    ) -> None:
        from opacus.accountants import create_accountant

        _register_conv1d()
        self.budget, self.sigma, self.q = budget, sigma, sample_rate
        self.steps_planned = steps_planned
        self.accountant = create_accountant(mechanism=budget.accountant)
        self.sampler = np.random.default_rng(_secret_seed())
        self.noise = torch.Generator().manual_seed(_secret_seed())
        self.empty_steps = 0
        self.gsm: Any = None
        self.parallel = data_parallel
        self.rank = int(getattr(data_parallel, "rank", 0))
        self.world = int(getattr(data_parallel, "world", 1))
        self.stand_in = False
        if data_parallel is not None:
            self.name = f"dp-sgd+{data_parallel.name}"
            self.device = data_parallel.device

    def prepare(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer
    ) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        """Per-example gradients on ``model``; clipping, noise and accounting on ``optimizer``."""
        from opacus import GradSampleModule
        from opacus.optimizers import DistributedDPOptimizer, DPOptimizer

        expected: float = max(1, round(self.q * self.budget.n_examples))
        make = DPOptimizer
        if self.world > 1:
            import torch.distributed as dist

            for p in model.parameters():  # worker 0's initial weights on every worker
                dist.broadcast(p.data, src=0)
            # each worker's clipped sum is divided by this, then averaged over the workers
            expected, make = self.q * self.budget.n_examples / self.world, DistributedDPOptimizer
        if self.device.type != "cpu":  # the noise is drawn where the gradients are
            self.noise = torch.Generator(device=self.device).manual_seed(_secret_seed())
        self.gsm = GradSampleModule(model, batch_first=True, loss_reduction="mean")
        self.optimizer = make(
            optimizer,
            noise_multiplier=self.sigma,
            max_grad_norm=self.budget.max_grad_norm,
            expected_batch_size=expected,  # type: ignore[arg-type]
            loss_reduction="mean",
            generator=self.noise,
            secure_mode=True,
        )
        self.optimizer.attach_step_hook(self.accountant.get_optimizer_hook_fn(self.q))
        return self.gsm, self.optimizer

    def plan(self, objective: Objective, rng: np.random.Generator) -> Iterator[np.ndarray]:
        """One epoch of Poisson batches; an empty draw is a noise-only step taken here."""
        n = self.budget.n_examples
        mine = np.arange(self.rank, n, self.world)
        for _ in range(objective.steps_per_epoch()):
            idx = mine[self.sampler.random(len(mine)) < self.q]
            if len(idx):
                yield idx
            elif self.world == 1:
                self._noise_step()
            elif len(mine):
                self.stand_in = True  # see the class notes: a zero-weight step
                yield mine[:1]
            else:  # fewer examples than workers
                raise ParameterError(
                    f"DP-SGD on {self.world} workers needs at least one training example per "
                    f"worker; there are {n}: use fewer workers"
                )

    def _noise_step(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        for p in self.optimizer.params:
            p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype, device=p.device)
        self.optimizer.step()
        self.empty_steps += 1

    def step(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        loss: torch.Tensor,
        s: TrainSettings,
    ) -> None:
        """Backward with per-example gradients; Opacus clips, adds noise and counts the step."""
        optimizer.zero_grad(set_to_none=True)
        if self.stand_in:
            loss = loss * 0.0
            self.stand_in = False
            self.empty_steps += 1
        with warnings.catch_warnings():
            # the first module takes token ids, which need no gradient: torch says so per step
            warnings.filterwarnings("ignore", message="Full backward hook", category=UserWarning)
            loss.backward()
        optimizer.step()

    def reduce(self, value: float) -> float:
        """A figure averaged over the workers (one process: itself)."""
        return value if self.parallel is None else self.parallel.reduce(value)

    def agree(self, flag: bool) -> bool:
        """Whether any worker says yes (one process: ``flag``)."""
        return flag if self.parallel is None else self.parallel.agree(flag)

    def epsilon_spent(self) -> float:
        """ε spent so far at the budget's δ (0 before the first step)."""
        if not self.accountant.history:
            return 0.0
        options = _accountant_options(self.budget.accountant)
        with _quiet_orders():
            return float(self.accountant.get_epsilon(delta=self.budget.delta, **options))

    def close(self) -> None:
        """Detach Opacus from the model (its hooks and per-example gradients)."""
        if self.gsm is not None:
            self.gsm._close()
            self.gsm = None

    def record(self) -> dict[str, Any]:
        """The privacy spent, and how, for the training record."""
        import opacus

        steps = sum(int(h[2]) for h in self.accountant.history)
        return {
            "strategy": self.name,
            "dp": {
                "epsilon": round(self.epsilon_spent(), 4),
                "epsilon_target": self.budget.epsilon,
                "delta": self.budget.delta,
                "accountant": self.budget.accountant,
                "noise_multiplier": round(self.sigma, 6),
                "max_grad_norm": self.budget.max_grad_norm,
                "sample_rate": round(self.q, 6),
                "expected_batch_size": round(self.q * self.budget.n_examples, 2),
                "steps": steps,
                "steps_planned": self.steps_planned,
                "empty_batches": self.empty_steps,
                "n_examples": self.budget.n_examples,
                "workers": self.world,
                "unit": self.budget.unit,
                "library": f"opacus {opacus.__version__}",
                "randomness": "batches and noise from the operating system's entropy (not the "
                "seed); not reproducible",
            },
        }


def _lent_parallel() -> Strategy | None:
    """The data-parallel strategy lent to this fit (``training_strategy``), if any."""
    from healthsynth.generators._lm._fit import lent_strategy

    lent = lent_strategy()
    # a data-parallel strategy of one worker still says where to train (its device)
    return lent if lent is not None and hasattr(lent, "world") else None


def train_private(
    model: torch.nn.Module,
    objective: Any,
    settings: TrainSettings,
    *,
    budget: PrivacyBudget,
    batch: float,
    threads: Any,
    verbose: bool = False,
    sigma: float | None = None,
) -> dict[str, Any]:
    """Calibrate the noise, then train ``model`` with DP-SGD (see :func:`._dp.fit_private`).

    ``sigma``: a noise multiplier already calibrated for this budget, batch and schedule.
    """
    from healthsynth.generators._lm._fit import fit_model
    from healthsynth.generators._lm._train import LastWeights

    if len(objective.train) != budget.n_examples:  # examples the codec could not encode
        budget = replace(budget, n_examples=len(objective.train))
    q = min(1.0, batch / budget.n_examples)
    private = PrivateObjective(objective, sample_rate=q)
    steps = private.steps_per_epoch() * settings.epochs
    if sigma is None:
        sigma = noise_multiplier(
            budget, sample_rate=q, steps=steps, epochs=settings.epochs, batch=q * budget.n_examples
        )
    strategy = DPStrategy(
        budget, sigma=sigma, sample_rate=q, steps_planned=steps, data_parallel=_lent_parallel()
    )
    try:
        return fit_model(
            model,
            private,
            settings,
            threads=threads,
            verbose=verbose,
            strategy=strategy,
            checkpoint=LastWeights(),
        )
    finally:
        strategy.close()
