"""One worker of the two-process DP-SGD update check in ``test_dp.py`` (run with torch spawn)."""

from __future__ import annotations

from typing import Any


def _model() -> Any:
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))


def _data() -> tuple[Any, Any]:
    import torch

    g = torch.Generator().manual_seed(1)
    return torch.randn(10, 3, generator=g), torch.randn(10, 1, generator=g)


def updated_weights(rank: int, world: int, store: str, rows: list[list[int]], out: str) -> None:
    """Take one DP-SGD step (no noise) on ``rows[rank]``; save the weights to ``out``.

    ``out`` may hold ``{rank}``. Called as ``torch.multiprocessing.spawn``'s function (the rank
    first), or directly with ``world=1``.
    """
    import torch
    import torch.distributed as dist

    from healthsynth.generators._lm._dp import PrivacyBudget
    from healthsynth.generators._lm._dp_sgd import DPStrategy
    from healthsynth.generators._lm._train import Strategy, TrainSettings

    class Lent(Strategy):
        name = "test-ddp"

        def __init__(self) -> None:
            self.rank, self.world = rank, world

    torch.set_num_threads(1)
    if world > 1:
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    budget = PrivacyBudget(1.0, 1e-3, 0.5, "rdp", 10, "rows")
    strategy = DPStrategy(
        budget,
        sigma=0.0,
        sample_rate=0.4,
        steps_planned=1,
        data_parallel=Lent() if world > 1 else None,
    )
    model = _model()
    net, opt = strategy.prepare(model, torch.optim.SGD(model.parameters(), lr=1.0))
    x, y = _data()
    idx = torch.tensor(rows[rank] or [0], dtype=torch.long)
    if not rows[rank]:  # an empty draw: a stand-in row, weighed by zero
        strategy.stand_in = True
    loss = ((net(x[idx]) - y[idx]) ** 2).mean()
    strategy.step(net, opt, loss, TrainSettings(epochs=1, learning_rate=1.0))
    torch.save({k: v.detach() for k, v in model.state_dict().items()}, out.format(rank=rank))
    strategy.close()
    if world > 1:
        dist.destroy_process_group()
