"""Weight averaging for the shared training loop (``TrainSettings.average_half_life``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["Average"]


class Average:
    """An exponential moving average of a model's weights, for validation and the checkpoint.

    Stopping early (patience, time) often lands while the learning rate is still high, where
    the last step's weights are a noisy point around the optimum; their average over the last
    fraction of an epoch is not. ``half_life`` is in epochs (a step's weight halves after
    ``half_life * steps_per_epoch`` steps); ``None`` averages nothing. Training always continues
    from the last step's weights.
    """

    def __init__(
        self, model: torch.nn.Module, half_life: float | None, steps_per_epoch: int
    ) -> None:
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.keep = (
            None if half_life is None else 0.5 ** (1 / max(half_life * steps_per_epoch, 1e-9))
        )
        self.mean: list[torch.Tensor] | None = None

    def update(self) -> None:
        if self.keep is None:
            return
        with torch.no_grad():
            if self.mean is None:
                self.mean = [p.detach().clone() for p in self.params]
            else:
                for m, p in zip(self.mean, self.params, strict=True):
                    m.lerp_(p.detach(), 1 - self.keep)

    def settle(self) -> None:
        """Put the average in the model's parameters for good."""
        if self.mean is not None:
            with torch.no_grad():
                for p, m in zip(self.params, self.mean, strict=True):
                    p.copy_(m)

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The average in the model's parameters inside the block, the last step's after it."""
        if self.mean is None:
            yield
            return
        with torch.no_grad():
            last = [p.detach().clone() for p in self.params]
            for p, m in zip(self.params, self.mean, strict=True):
                p.copy_(m)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, w in zip(self.params, last, strict=True):
                    p.copy_(w)
