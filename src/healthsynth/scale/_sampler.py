"""What one sampling block needs, on a Ray worker or in this process.

The model travels as bytes (its folder's files, put once in Ray's object store), a
:class:`_BlockSampler` actor loads it once and samples the blocks it is handed, and
:func:`_sample_block` turns one block's rows into file contents
(:mod:`healthsynth.scale._layouts`). The compute threads are pinned the same everywhere
(:func:`_pinned_threads`), so every worker produces the same numbers.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from healthsynth.errors import ParameterError
from healthsynth.scale._layouts import block_files
from healthsynth.scale._plan import Block


@dataclass(frozen=True)
class _Spec:
    """What every block of one run shares."""

    fmt: str  # shards, table-parquet, table-csv, or a timeline format
    timelines: bool
    conditions: dict[str, Any] | None
    threads: int
    trust_pickle: bool = False


# -- the model travels as bytes ---------------------------------------------------------------
def _pack(folder: Path) -> dict[str, bytes]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in files}


def _model_files(model: Any) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The model folder's files and its ``generator.json`` (a fitted generator is saved first)."""
    from healthsynth.generators import Generator
    from healthsynth.generators._folder import check_folder

    if isinstance(model, (str, Path)):
        folder, meta = check_folder(Path(model))
        return _pack(Path(folder)), meta
    if not isinstance(model, Generator) and not hasattr(model, "save"):
        raise ParameterError(
            f"model must be a model folder or a fitted generator; got {type(model).__name__}"
        )
    with tempfile.TemporaryDirectory(prefix="healthsynth-model-") as tmp:
        folder = Path(model.save(Path(tmp) / "model"))
        _, meta = check_folder(folder)
        return _pack(folder), meta


def _is_timelines(meta: Mapping[str, Any]) -> bool:
    from healthsynth.generators._registry import timeline_registry

    return meta.get("data_kind") == "timelines" or meta.get("generator") in (
        timeline_registry.names()
    )


# -- one block, on a worker or in this process ------------------------------------------------
@contextmanager
def _pinned_threads(threads: int, *, restore: bool) -> Iterator[None]:
    """Run with ``threads`` compute threads (the same on every worker, so the same numbers)."""
    old_env = os.environ.get("HEALTHSYNTH_THREADS")
    os.environ["HEALTHSYNTH_THREADS"] = str(threads)
    torch = sys.modules.get("torch")
    old_torch = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if restore:
            if old_env is None:
                os.environ.pop("HEALTHSYNTH_THREADS", None)
            else:
                os.environ["HEALTHSYNTH_THREADS"] = old_env
            if torch is not None and old_torch is not None:
                torch.set_num_threads(old_torch)


def _sample_block(model: Any, spec: _Spec, block: Block) -> dict[str, bytes]:
    """Sample one block and turn it into file contents."""
    if spec.timelines:
        data = model.sample(
            block.size, conditions=spec.conditions, seed=block.seed, id_start=block.start
        )
    else:
        data = model.sample(block.size, conditions=spec.conditions, seed=block.seed)
        data = model._renumber_ids(data, start=block.start)
    table_fmt = "csv" if spec.fmt == "table-csv" else "parquet"
    return block_files(
        data,
        fmt=spec.fmt if spec.timelines else table_fmt,
        index=block.index,
        start=block.start,
        code_map=getattr(model, "code_map_", None),
    )


class _BlockSampler:
    """A Ray actor: loads the model once, then samples the blocks it is handed."""

    def __init__(self, files: dict[str, bytes], spec: _Spec) -> None:
        # a failure here is kept and raised by ping(), so the driver sees the error itself
        # (a model folder it cannot load) rather than only a dead worker
        self._error: BaseException | None = None
        try:
            self._start(files, spec)
        except Exception as e:  # noqa: BLE001 - re-raised by ping()
            self._error = e

    def _start(self, files: dict[str, bytes], spec: _Spec) -> None:
        from healthsynth.generators import load_generator

        self.spec = spec
        os.environ["HEALTHSYNTH_THREADS"] = str(spec.threads)
        # the model's files live only while it loads: an actor is killed, not closed, so a
        # folder kept for its lifetime would stay behind in /tmp with a copy of the weights
        with tempfile.TemporaryDirectory(prefix="healthsynth-model-") as tmp:
            root = Path(tmp)
            for name, data in files.items():
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_bytes(data)
            self.model = load_generator(root, trust_pickle=spec.trust_pickle)
        self._pin = _pinned_threads(spec.threads, restore=False)
        self._pin.__enter__()

    def ping(self) -> int:
        """The worker's process ID (answers once ``__init__`` has finished)."""
        if self._error is not None:
            raise self._error
        return os.getpid()

    def sample_block(self, block: Block) -> dict[str, Any]:
        """Sample ``block``; returns its files, the seconds it took and this worker's PID."""
        start, cpu = time.perf_counter(), time.process_time()
        files = _sample_block(self.model, self.spec, block)
        took = time.perf_counter() - start
        cpu = time.process_time() - cpu
        return {"files": files, "seconds": took, "cpu_seconds": cpu, "pid": os.getpid()}
