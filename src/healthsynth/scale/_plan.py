"""The block plan of a distributed sample: which rows each block holds and its seed.

A sample of ``n`` rows (or patients) is cut into blocks of ``block_size`` (the last one
shorter). Block ``i`` starts at row ``i * block_size`` and is sampled with its own seed, drawn
from ``numpy.random.SeedSequence(entropy=root, spawn_key=(i,))``: it depends only on the root
seed and the block's index, never on how many workers there are or which one samples it, so
the output is the same for any number of workers. Without a seed the root is fresh entropy,
recorded in the run record (passing it back as the seed reproduces the run).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from healthsynth.errors import ParameterError

__all__ = ["Block", "block_seed", "plan_blocks", "root_seed"]


@dataclass(frozen=True)
class Block:
    """One block of a sample: rows ``start + 1 … start + size`` (1-based), with its seed."""

    index: int
    start: int
    size: int
    seed: int


def root_seed(seed: Any) -> int:
    """The root entropy: ``seed`` itself (a whole number ≥ 0), or fresh entropy for None."""
    if seed is None:
        return int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed must be a whole number ≥ 0 or None; got {seed!r}")
    return int(seed)


def block_seed(root: int, index: int) -> int:
    """The seed of block ``index`` under the root entropy ``root`` (fits a 31-bit int)."""
    state = np.random.SeedSequence(entropy=root, spawn_key=(index,)).generate_state(1, np.uint32)
    return int(state[0]) & 0x7FFFFFFF


def plan_blocks(n: int, block_size: int, root: int) -> list[Block]:
    """Every block of a sample of ``n`` rows, in order."""
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ParameterError(
            f"block_size must be a positive whole number of rows; got {block_size!r}"
        )
    return [
        Block(index=i, start=start, size=min(block_size, n - start), seed=block_seed(root, i))
        for i, start in enumerate(range(0, n, block_size))
    ]
