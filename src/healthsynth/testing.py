"""The behaviour every healthsynth generator shares, as checks anyone can run.

Like scikit-learn's ``check_estimator``: :func:`check_generator` fits a generator on data you
give and runs every check; it raises ``AssertionError`` naming the first check that fails.
The project's tests run it over every registered generator of both data kinds
(``tests/generators/test_contract.py``), and a third-party generator can run it too::

    from healthsynth.testing import check_generator
    check_generator(MyGenerator(seed=0), table)

The checks, each also callable on its own (:data:`CHECKS` lists those that take a fitted
generator):

* settings: keyword-only, stored unchanged (a generator rebuilt from ``get_params()`` has the
  same settings), a valid ``data_kind``;
* unfitted use raises :class:`~healthsynth.errors.NotFittedError` saying to call ``fit``;
* ``fit`` returns the generator and leaves the data unchanged;
* a sample matches what was learned: a table has the schema's columns, dtypes and domains; a
  timeline sample is a ``Dataset`` with the training tables and columns, ``n`` patients, and
  events of sampled patients only;
* the same seed gives the same data, another seed other data, and ``seed=None`` fresh data;
* a bad ``n`` (0, negative, fractional, boolean) is refused with a ``ParameterError``;
* conditions are honoured (a categorical column fixed to one of its values) and an unknown
  condition column is refused with a ``ConditionError``;
* save and load round-trip: the folder holds ``generator.json``, ``schema.json``,
  ``training.json`` and ``model/``, no pickle unless the class says ``pickled``, and the loaded
  generator samples the same data for the same seed.
"""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CHECKS",
    "check_bad_n",
    "check_conditions",
    "check_fit",
    "check_generator",
    "check_sample",
    "check_save_load",
    "check_seeds",
    "check_settings",
    "check_unfitted",
]


def _fail(check: str, what: str) -> AssertionError:
    return AssertionError(f"{check}: {what}")


def _tables(sample: Any) -> dict[str, pd.DataFrame]:
    return dict(sample.tables) if hasattr(sample, "tables") else {"table": sample}


def _same(a: Any, b: Any) -> bool:
    ta, tb = _tables(a), _tables(b)
    if list(ta) != list(tb):
        return False
    for name in ta:
        try:
            pd.testing.assert_frame_equal(ta[name], tb[name])
        except AssertionError:
            return False
    return True


def _copy(data: Any) -> Any:
    if isinstance(data, pd.DataFrame):
        return data.copy(deep=True)
    return {name: df.copy(deep=True) for name, df in data.tables.items()}


def check_settings(generator: Any) -> None:
    """Settings are keyword-only and stored unchanged; the data kind is known."""
    from healthsynth.generators._base import DATA_KINDS

    name = "check_settings"
    if getattr(generator, "data_kind", None) not in DATA_KINDS:
        raise _fail(name, f"data_kind must be one of {DATA_KINDS}")
    params = inspect.signature(type(generator).__init__).parameters
    positional = [p for p in params.values() if p.name != "self" and p.kind != p.KEYWORD_ONLY]
    if positional:
        raise _fail(name, f"settings {[p.name for p in positional]} are not keyword-only")
    settings = generator.get_params()
    rebuilt = type(generator)(**settings).get_params()
    if set(rebuilt) != set(settings) or any(rebuilt[k] is not settings[k] for k in settings):
        raise _fail(name, "a generator rebuilt from get_params() has other settings")


def check_unfitted(generator: Any) -> None:
    """Sampling before ``fit`` raises NotFittedError saying to call fit."""
    from healthsynth.errors import NotFittedError

    fresh = type(generator)(**generator.get_params())
    try:
        fresh.sample(5)
    except NotFittedError as e:
        if "fit" not in str(e):
            raise _fail("check_unfitted", f"the error does not say to call fit: {e}") from None
        return
    raise _fail("check_unfitted", "an unfitted generator sampled without NotFittedError")


def check_fit(generator: Any, data: Any, **fit_params: Any) -> Any:
    """``fit`` returns the generator and leaves ``data`` as it was; returns the generator."""
    before = _copy(data)
    out = generator.fit(data, **fit_params)
    if out is not generator:
        raise _fail("check_fit", "fit did not return the generator itself")
    after = _copy(data)
    if isinstance(before, pd.DataFrame):
        unchanged = before.equals(after)
    else:
        unchanged = list(before) == list(after) and all(before[k].equals(after[k]) for k in before)
    if not unchanged:
        raise _fail("check_fit", "fit changed the data it was given")
    return generator


def check_sample(generator: Any, data: Any, *, n: int = 60) -> None:
    """A sample has ``n`` rows (patients) shaped like the training data."""
    name = "check_sample"
    out = generator.sample(n, seed=11)
    if generator.data_kind == "table":
        schema = generator.schema_
        expected = [c.name for c in schema.columns if c.kind != "text"]
        if len(out) != n or list(out.columns) != expected:
            raise _fail(name, f"expected {n} rows with columns {expected}")
        schema.validate(out)  # raises SchemaValidationError naming every problem
        return
    if list(out.tables) != list(data.tables):
        raise _fail(name, f"tables {list(out.tables)} differ from {list(data.tables)}")
    for table, df in out.tables.items():
        if list(df.columns) != list(data.tables[table].columns):
            raise _fail(name, f"table '{table}' has other columns than the training one")
    patients = out.patient_table
    if len(patients) != n or not patients[out.key].is_unique:
        raise _fail(name, f"expected {n} patients with unique IDs")
    events = out.events()
    if not events[out.key].isin(patients[out.key]).all():
        raise _fail(name, "some events belong to no sampled patient")


def check_seeds(generator: Any, data: Any = None, *, n: int = 60) -> None:
    """Same seed, same data; another seed or ``seed=None``, other data."""
    name = "check_seeds"
    a = generator.sample(n, seed=11)
    if not _same(a, generator.sample(n, seed=11)):
        raise _fail(name, "the same seed gave different data")
    if _same(a, generator.sample(n, seed=12)):
        raise _fail(name, "different seeds gave the same data")
    if _same(generator.sample(n), generator.sample(n)):
        raise _fail(name, "seed=None gave the same data twice (it must draw fresh randomness)")


def check_bad_n(generator: Any, data: Any = None) -> None:
    """A bad ``n`` is refused with a ParameterError."""
    from healthsynth.errors import ParameterError

    for n in (0, -5, 2.5, True):
        try:
            generator.sample(n)
        except ParameterError as e:
            if "positive whole number" not in str(e):
                raise _fail("check_bad_n", f"the message for n={n!r} is unclear: {e}") from None
            continue
        raise _fail("check_bad_n", f"n={n!r} was not refused")


def _condition(generator: Any, data: Any) -> tuple[str, Any] | None:
    """A categorical column and its least frequent value (at least 10% of the rows)."""
    table = data if isinstance(data, pd.DataFrame) else data.patient_table
    for c in generator.schema_.columns:
        if c.kind not in ("categorical", "boolean") or c.name not in table:
            continue
        shares = table[c.name].value_counts(normalize=True)
        shares = shares[shares >= 0.1]
        if len(shares) >= 2:
            value = shares.index[-1]
            return c.name, value.item() if isinstance(value, np.generic) else value
    return None


def check_conditions(generator: Any, data: Any, *, n: int = 40) -> None:
    """A condition on a categorical column holds in every row; an unknown column is refused."""
    from healthsynth.errors import ConditionError

    name = "check_conditions"
    try:
        generator.sample(5, conditions={"no such column": 1}, seed=0)
    except ConditionError:
        pass
    else:
        raise _fail(name, "an unknown condition column was not refused")
    found = _condition(generator, data)
    if found is None:
        return
    column, value = found
    out = generator.sample(n, conditions={column: value}, seed=3)
    table = out if generator.data_kind == "table" else out.patient_table
    if len(table) != n or not (table[column].astype(str) == str(value)).all():
        raise _fail(name, f"sampling with {column}={value!r} gave other values or row counts")


def check_save_load(generator: Any, data: Any = None, *, n: int = 40) -> None:
    """Save and load round-trip, without pickles unless the class says ``pickled``."""
    from healthsynth.generators import load_generator

    name = "check_save_load"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        generator.save(folder)
        files = {p.name for p in folder.iterdir()}
        if not {"generator.json", "schema.json", "training.json", "model"} <= files:
            raise _fail(name, f"the model folder holds {sorted(files)}")
        if not type(generator).pickled and any(
            p.suffix in (".pkl", ".pickle", ".bin", ".pt") for p in folder.rglob("*")
        ):
            raise _fail(name, "the model folder holds a pickle but the class is not pickled")
        # a pickled folder loads only when the caller trusts it (this one was just written)
        back = load_generator(folder, trust_pickle=type(generator).pickled)
        # settings a folder may never choose are given again by the caller, as a user would
        for key in type(generator).call_settings:
            setattr(back, key, getattr(generator, key))
        if type(back) is not type(generator) or back.data_kind != generator.data_kind:
            raise _fail(name, f"loading gave a {type(back).__name__}")
        if not _same(back.sample(n, seed=3), generator.sample(n, seed=3)):
            raise _fail(name, "the loaded generator samples other data for the same seed")


#: The checks of a fitted generator, each called as ``check(generator, data)``.
CHECKS: tuple[Callable[[Any, Any], None], ...] = (
    check_sample,
    check_seeds,
    check_bad_n,
    check_conditions,
    check_save_load,
)


def check_generator(
    generator: Any, data: Any, *, fit_params: Mapping[str, Any] | None = None
) -> Any:
    """Fit ``generator`` (unfitted) on ``data`` and run every check; returns it fitted.

    ``data`` is a DataFrame for a table generator, a :class:`healthsynth.data.Dataset` for a
    timeline generator; ``fit_params`` go to ``fit`` (a schema, rules, a code mapping).
    """
    check_settings(generator)
    check_unfitted(generator)
    check_fit(generator, data, **dict(fit_params or {}))
    for check in CHECKS:
        check(generator, data)
    return generator
