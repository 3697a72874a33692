"""Scale-out on Ray: distributed sampling and evaluation, data-parallel training.

Everything here runs the same blocks as the single-process path, spread over Ray workers
(``engine="ray"``), or in this process (``engine="local"``). Importing this package does not
import Ray: that happens when a Ray engine is used (the ``ray`` extra). ``docs/scale-out.md``
says what runs where.
"""

from healthsynth.scale._plan import Block, block_seed, plan_blocks
from healthsynth.scale._ray import ENGINES, check_engine, check_workers, import_ray
from healthsynth.scale.sampling import SampleProgress, SampleRun, sample

__all__ = [
    "ENGINES",
    "Block",
    "SampleProgress",
    "SampleRun",
    "block_seed",
    "check_engine",
    "check_workers",
    "import_ray",
    "plan_blocks",
    "sample",
]
