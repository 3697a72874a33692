"""The data-parallel training strategy: DDP through the LM engine's Strategy seam.

Every worker runs the generator's own ``fit`` (same data, same seed, so the same codec and the
same initial weights; DDP also broadcasts worker 0's weights when it wraps the model). The
strategy then changes only how steps are taken:

* ``prepare`` wraps the model in ``DistributedDataParallel``: gradients are averaged over the
  workers in the backward pass, so every worker applies the same update;
* ``plan`` gives each worker its share of **every** batch of the single-process plan (rows
  ``rank, rank + K, …``; a batch smaller than K goes whole to every worker), drawn from a
  generator seeded alike on every worker: the batches, the steps per epoch and the learning-rate
  schedule are those of one process, each step's work split K ways;
* ``reduce`` averages a figure over the workers (training and validation loss), ``agree``
  stops all workers when one is out of time, so early stopping, the time budget and the
  periodic checks decide the same on every worker and none waits for ever on another.

This module imports torch; it is imported only on training workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from healthsynth.generators._lm._train import Objective, Strategy

__all__ = ["DataParallel"]


class DataParallel(Strategy):
    """DDP over the workers of the current ``torch.distributed`` process group."""

    name = "ray-ddp"

    def __init__(self, *, seed: int, device: str | torch.device | None = None) -> None:
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError("DataParallel needs an initialised torch.distributed process group")
        super().__init__(device=device)
        self.rank = dist.get_rank()
        self.world = dist.get_world_size()
        self.rng = np.random.default_rng(seed)
        # small figures travel as tensors where the backend can take them (NCCL: on the GPU)
        self._comm = self.device if dist.get_backend() == "nccl" else torch.device("cpu")

    def prepare(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer
    ) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        from torch.nn.parallel import DistributedDataParallel

        if self.device.type == "cuda":  # the model is already there (the loop moved it)
            return DistributedDataParallel(model, device_ids=[self.device]), optimizer
        return DistributedDataParallel(model), optimizer

    def plan(self, objective: Objective, rng: np.random.Generator) -> Iterator[np.ndarray]:
        for batch in objective.plan(self.rng):
            yield batch[self.rank :: self.world] if len(batch) >= self.world else batch

    def reduce(self, value: float) -> float:
        t = torch.tensor([float(value)], dtype=torch.float64, device=self._comm)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return float(t.item()) / self.world

    def agree(self, flag: bool) -> bool:
        t = torch.tensor([1 if flag else 0], dtype=torch.int64, device=self._comm)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def record(self) -> dict[str, Any]:
        return {
            "strategy": self.name,
            "workers": self.world,
            "backend": dist.get_backend(),
            "device": str(self.device),
        }
