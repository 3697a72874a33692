"""The independent-marginals floor: every column drawn on its own from its observed values.

It keeps each column's distribution exactly (values, shares, missing rate) and every relation
between columns not at all, so it is the floor any generator must beat on dependence, detection
and utility. It also shows what marginal fidelity alone is worth. Its samples hold only values
seen in training (per column, never whole rows), so its privacy figures are not a lower bound on
risk for rare values.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema, infer_schema
from healthsynth.errors import ConditionError, DataError, ModelFolderError
from healthsynth.generators._base import Generator, surrogate_ids, warn
from healthsynth.generators._conditions import Condition, resolve_conditions
from healthsynth.generators._folder import peak_rss_mb, read_json, runtime_info

__all__ = ["IndependentMarginals"]


class IndependentMarginals(Generator):
    """Sample each column independently from its empirical distribution.

    Parameters
    ----------
    seed
        Not used in fitting (nothing random happens there); kept for a uniform interface.
    """

    name = "marginals"

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, data: pd.DataFrame, *, schema: Schema | None = None) -> IndependentMarginals:
        """Count each modelled column's values and its missing share."""
        started = time.perf_counter()
        if not isinstance(data, pd.DataFrame):
            raise DataError(f"data must be a pandas DataFrame; got {type(data).__name__}")
        if len(data) == 0:
            raise DataError("the data has no rows to learn from")
        if schema is None:
            schema = infer_schema(data)
        else:
            schema.validate(data)
        self.marginals_: dict[str, dict[str, Any]] = {}
        for c in schema.columns:
            if c.kind == "text":
                warn(f"column '{c.name}' holds free text, which is not generated; left out")
                continue
            if not c.is_modelled:
                continue
            s = data[c.name]
            counts = s.dropna().value_counts(sort=False)
            values = counts.index.tolist()
            if c.kind == "datetime":
                values = [pd.Timestamp(v).isoformat() for v in values]
            self.marginals_[c.name] = {
                "values": [v.item() if hasattr(v, "item") else v for v in values],
                "counts": counts.to_numpy(int).tolist(),
                "missing": int(s.isna().sum()),
            }
        self.schema_ = schema
        self.training_record_ = {
            "generator": self.name,
            "params": self.get_params(),
            "n_rows": int(len(data)),
            "fit_seconds": round(time.perf_counter() - started, 3),
            "peak_rss_mb": peak_rss_mb(),
            "runtime": runtime_info(),
        }
        return self

    def sample(
        self,
        n: int,
        *,
        conditions: Mapping[str, Any] | None = None,
        seed: int | None = None,
    ) -> pd.DataFrame:
        """Return ``n`` rows, each column drawn on its own.

        A conditioned column is drawn from its observed values that satisfy the condition, every
        other column from its whole marginal (independence).
        """
        self._check_fitted()
        n = self._check_n(n)
        conds = resolve_conditions(conditions, self.schema_)
        rng = np.random.default_rng(seed)
        out: dict[str, Any] = {}
        for c in self.schema_.columns:
            if c.kind == "text":
                continue
            if c.kind == "identifier":
                out[c.name] = surrogate_ids(c.dtype, 0, n)
                continue
            m = self.marginals_[c.name]
            out[c.name] = self._draw(c.name, c.kind, m, conds.get(c.name), n, rng)
        df = pd.DataFrame(out)
        for c in self.schema_.columns:
            if c.name in df and c.dtype and c.kind in ("integer", "categorical", "boolean"):
                if not df[c.name].isna().any():
                    try:
                        df[c.name] = df[c.name].astype(c.dtype)
                    except (TypeError, ValueError):
                        pass
        return df

    @staticmethod
    def _draw(
        name: str,
        kind: str,
        m: Mapping[str, Any],
        cond: Condition | None,
        n: int,
        rng: np.random.Generator,
    ) -> Any:
        values = list(m["values"])
        weights = np.asarray(m["counts"], float)
        missing = float(m["missing"])
        if kind == "datetime":
            values = list(pd.to_datetime(values))
        if cond is not None:
            keep = np.array([_satisfies(v, cond) for v in values], bool)
            if not keep.any():
                raise ConditionError(
                    f"no value of column '{name}' seen in training satisfies {cond.describe()}"
                )
            values = [v for v, k in zip(values, keep, strict=True) if k]
            weights = weights[keep]
            missing = 0.0
        total = weights.sum() + missing
        if total == 0:
            return np.full(n, None, dtype=object)
        p = np.append(weights, missing) / total
        idx = rng.choice(len(values) + 1, size=n, p=p)
        arr = np.empty(n, dtype=object)
        present = idx < len(values)
        pool = np.empty(len(values), dtype=object)
        pool[:] = values
        arr[present] = pool[idx[present]]
        arr[~present] = None
        series = pd.Series(arr)
        if kind in ("numeric", "integer"):
            return pd.to_numeric(series).to_numpy()
        if kind == "datetime":
            return pd.to_datetime(series).to_numpy()
        return series.to_numpy()

    def _save_state(self, folder: Path) -> None:
        """The counts go to ``model/marginals.json``."""
        (folder / "marginals.json").write_text(json.dumps(self.marginals_), encoding="utf-8")

    def _load_state(self, folder: Path, meta: dict[str, Any]) -> None:
        self.marginals_ = read_json(folder / "model" / "marginals.json", folder)
        missing = [c.name for c in self.schema_.modelled if c.name not in self.marginals_]
        if missing:
            raise ModelFolderError(
                f"model folder {folder} is corrupted: no counts for column(s) {', '.join(missing)}"
            )


def _satisfies(v: Any, cond: Condition) -> bool:
    if cond.values is not None:
        return any(v == a or str(v) == str(a) for a in cond.values)
    try:
        x = float(v)
    except (TypeError, ValueError):
        return False
    return bool(cond.low <= x <= cond.high)
