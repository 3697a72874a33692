"""The generator contract shared by every generator."""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from healthsynth.data import Schema, write_table
from healthsynth.errors import HealthsynthWarning, NotFittedError, ParameterError

__all__ = ["Generator", "HealthsynthWarning", "as_rules", "surrogate_ids"]


class Generator(ABC):
    """A synthetic-data generator.

    Subclasses take keyword-only settings in ``__init__`` and store them unchanged (no I/O, no
    seeding); ``fit`` validates, learns state into attributes ending in ``_`` and returns
    ``self``; ``sample`` always returns rows that match the schema.
    """

    #: Registry name.
    name: ClassVar[str] = ""
    #: Whether saved folders hold pickles, which run code when loaded: :meth:`load` refuses
    #: such a folder unless called with ``trust_pickle=True``.
    pickled: ClassVar[bool] = False

    schema_: Schema

    @abstractmethod
    def fit(self, data: pd.DataFrame, *, schema: Schema | None = None) -> Generator:
        """Learn from ``data`` (a schema is inferred when none is given)."""

    @abstractmethod
    def sample(
        self,
        n: int,
        *,
        conditions: Mapping[str, Any] | None = None,
        seed: int | None = None,
    ) -> pd.DataFrame:
        """Return ``n`` synthetic rows, optionally with some columns fixed or bounded."""

    @abstractmethod
    def save(self, path: str | Path) -> Path:
        """Save to a model folder."""

    @classmethod
    @abstractmethod
    def load(cls, path: str | Path, *, trust_pickle: bool = False) -> Generator:
        """Load a model folder written by :meth:`save`.

        Parameters
        ----------
        path
            The model folder.
        trust_pickle
            Allow unpickling the folder's model file. Only generators with ``pickled = True``
            hold one; they raise :class:`~healthsynth.errors.ModelFolderError` without this,
            because unpickling runs whatever code the file carries. Every other generator
            ignores it.
        """

    # -- shared helpers -------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """The constructor settings."""
        return {k: getattr(self, k) for k in self._param_names()}

    @classmethod
    def _param_names(cls) -> list[str]:
        import inspect

        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def _check_fitted(self) -> None:
        if not hasattr(self, "schema_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(data) or load(path) first"
            )

    @staticmethod
    def _check_n(n: Any) -> int:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise ParameterError(f"n must be a positive whole number of rows; got {n!r}")
        return int(n)

    def sample_to_file(
        self,
        n: int,
        path: str | Path,
        *,
        conditions: Mapping[str, Any] | None = None,
        seed: int | None = None,
        block_size: int = 50_000,
    ) -> Path:
        """Sample ``n`` rows to a CSV or Parquet file in blocks (memory stays bounded).

        The file appears only when complete (written to a temporary path, then renamed).
        """
        from healthsynth.data import atomic_path
        from healthsynth.data._io import table_format

        n = self._check_n(n)
        path = Path(path)
        fmt = table_format(path, "output file")
        if n <= block_size:
            return write_table(self.sample(n, conditions=conditions, seed=seed), path)
        seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=n // block_size + 1)
        with atomic_path(path) as tmp:
            writer = None
            done = 0
            for i, block_seed in enumerate(seeds):
                m = min(block_size, n - done)
                if m <= 0:
                    break
                block = self.sample(m, conditions=conditions, seed=int(block_seed))
                block = self._renumber_ids(block, start=done)
                if fmt == "csv":
                    block.to_csv(tmp, mode="a" if i else "w", header=(i == 0), index=False)
                else:
                    import pyarrow as pa
                    import pyarrow.parquet as pq

                    table = pa.Table.from_pandas(block, preserve_index=False)
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, table.schema)
                    writer.write_table(table.cast(writer.schema))
                done += m
            if writer is not None:
                writer.close()
        return path

    def _renumber_ids(self, block: pd.DataFrame, *, start: int) -> pd.DataFrame:
        """Give a block of a file its place in the file's run of surrogate identifiers."""
        for c in self.schema_.columns:
            if c.kind == "identifier" and c.name in block:
                block[c.name] = surrogate_ids(c.dtype, start, len(block))
        return block


class _NoProgress:
    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def progress_bar(verbose: bool) -> Any:
    """A rich progress display for training (a do-nothing context when not ``verbose``)."""
    if not verbose:
        return _NoProgress()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=False,
    )


def warn(message: str) -> None:
    """Issue a :class:`HealthsynthWarning`."""
    warnings.warn(message, HealthsynthWarning, stacklevel=3)


def as_rules(rules: Any, schema: Schema) -> Any:
    """A checked RuleSet from a RuleSet, a list of rules or a YAML path (None: no rules)."""
    if rules is None:
        return None
    from healthsynth.knowledge import RuleSet, load_rules

    if isinstance(rules, (str, Path)):
        rules = load_rules(rules)
    elif not isinstance(rules, RuleSet):
        rules = RuleSet(rules)
    if len(rules) == 0:
        return None
    rules.check(schema)
    return rules


def surrogate_ids(dtype: str, start: int, n: int) -> np.ndarray:
    """Identifiers ``start + 1 … start + n`` for synthetic rows (numbers, or ``syn-…`` strings)."""
    if dtype.startswith(("int", "uint", "Int", "float")):
        return np.arange(start + 1, start + n + 1)
    return np.array([f"syn-{i:08d}" for i in range(start + 1, start + n + 1)], dtype=object)
