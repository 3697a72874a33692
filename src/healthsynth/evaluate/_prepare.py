"""Lining up the tables of an evaluation: one schema, the same columns, comparable dtypes.

Problems that leave something to evaluate become warnings (kept in the result's ``meta``);
problems that leave nothing to evaluate raise :class:`~healthsynth.errors.DataError` with one
sentence saying what to do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from healthsynth.data import Schema, infer_schema
from healthsynth.errors import DataError

__all__ = ["Prepared", "metric_context", "prepare"]


@dataclass
class Prepared:
    """Tables restricted to the columns every one of them has, and the schema of those columns."""

    real: pd.DataFrame
    synthetic: pd.DataFrame
    holdout: pd.DataFrame | None
    schema: Schema
    warnings: list[str] = field(default_factory=list)


def metric_context(
    prep: Prepared,
    *,
    seed: int,
    rules: Any,
    training: Mapping[str, Any] | None,
    sampling: Mapping[str, Any] | None,
    examples: pd.DataFrame | None,
) -> dict[str, Any]:
    """What the table metrics of one evaluation read: the aligned tables and the settings.

    Each metric takes the entries its ``compute`` names; ``cache`` holds fitted models shared
    between the metrics of this one evaluation (e.g. the TSTR models).
    """
    return {
        "real": prep.real,
        "synthetic": prep.synthetic,
        "holdout": prep.holdout,
        "schema": prep.schema,
        "seed": seed,
        "rules": rules,
        "training": dict(training) if training else None,
        "sampling": dict(sampling) if sampling else None,
        "examples": examples,
        "cache": {},
    }


def prepare(
    *,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
    schema: Schema | None = None,
    target: str | None = None,
    sensitive: Iterable[str] | None = None,
) -> Prepared:
    """Check and align the tables; see the module docstring for what is an error."""
    warnings: list[str] = []
    _check_rows(real=real, synthetic=synthetic, holdout=holdout)
    schema = _with_roles(real, schema, target, sensitive, warnings)
    missing = _missing_columns(schema, synthetic, holdout, warnings)
    synthetic, holdout, keep = _coerced(real, synthetic, holdout, schema, missing, warnings)
    if not keep:
        raise DataError(
            "the synthetic and real tables share no column that can be compared "
            f"(real: {', '.join(map(str, real.columns))}; "
            f"synthetic: {', '.join(map(str, synthetic.columns))}); check that they describe "
            "the same table"
        )
    drop = {c.name for c in schema.modelled if c.name not in keep}
    _warn_leaks(real, schema, drop, warnings)
    target_name = schema.target
    if target_name in drop:
        warnings.append(f"the target '{target_name}' cannot be compared, so utility is skipped")
    cols = tuple(c for c in schema.columns if c.name not in drop)
    schema = replace(schema, columns=cols)
    names = [c.name for c in cols if c.name in real.columns]
    return Prepared(
        real=real[names].reset_index(drop=True),
        synthetic=synthetic[[n for n in names if n in synthetic.columns]].reset_index(drop=True),
        holdout=holdout[[n for n in names if n in holdout.columns]].reset_index(drop=True)
        if holdout is not None
        else None,
        schema=schema,
        warnings=warnings,
    )


def _check_rows(
    *, real: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame | None
) -> None:
    """Every table given is a DataFrame with rows."""
    for what, df in (("real", real), ("synthetic", synthetic), ("holdout", holdout)):
        if df is None:
            continue
        if not isinstance(df, pd.DataFrame):
            raise DataError(f"the {what} table must be a pandas DataFrame; got {type(df).__name__}")
        if len(df) == 0:
            raise DataError(f"the {what} table has no rows; nothing can be evaluated")


def _with_roles(
    real: pd.DataFrame,
    schema: Schema | None,
    target: str | None,
    sensitive: Iterable[str] | None,
    warnings: list[str],
) -> Schema:
    """The schema (inferred from ``real`` when not given) with the target and sensitive roles.

    Sensitive columns the real table lacks are left out with a warning; a target it lacks is an
    error.
    """
    sensitive = list(sensitive or [])
    absent_sensitive = [c for c in sensitive if c not in real.columns]
    if absent_sensitive:
        warnings.append(
            f"sensitive column(s) {', '.join(map(repr, absent_sensitive))} are not in the real "
            "table, so fairness and attribute-inference metrics leave them out"
        )
        sensitive = [c for c in sensitive if c in real.columns]
    if target is not None and target not in real.columns:
        raise DataError(
            f"target column '{target}' is not in the real table; its columns are: "
            f"{', '.join(map(str, real.columns))}"
        )
    if schema is None:
        return infer_schema(real, target=target, sensitive=sensitive, source="the real table")
    if target is not None or sensitive:
        return schema.with_roles(
            target=target or schema.target,
            sensitive=sorted(set(schema.sensitive) | set(sensitive)),
        )
    return schema


#: A column that alone gives the target for at least this share of the real rows is a leak...
LEAK_ACCURACY = 0.99
#: ... unless the target's most common class already holds nearly that many.
_LEAK_MAJORITY = 0.97


def _warn_leaks(real: pd.DataFrame, schema: Schema, drop: set[str], warnings: list[str]) -> None:
    """Warn about columns that alone give a categorical target (a threshold, a category).

    A shallow tree on the one column (its missing values a value of their own) is scored on the
    real rows: birthwt's birth weight gives ``low`` (under 2,500 g) exactly, flchain's cause of
    death gives ``death``. Utility then measures whether a generator kept that one rule.
    """
    import numpy as np
    from sklearn.tree import DecisionTreeClassifier

    target = schema.target
    if target is None or target in drop or schema[target].kind not in ("categorical", "boolean"):
        return
    rows = real[real[target].notna()]
    y = rows[target].astype(str).to_numpy()
    if len(rows) < 20 or pd.Series(y).value_counts(normalize=True).iloc[0] >= _LEAK_MAJORITY:
        return
    leaks = []
    for c in schema.modelled:
        if c.name in drop or c.name == target or c.name not in rows.columns:
            continue
        s = rows[c.name]
        if c.kind in ("numeric", "integer"):
            v = pd.to_numeric(s, errors="coerce").to_numpy(float)
            x = np.column_stack(
                [np.nan_to_num(v, nan=np.nanmin(v) - 1 if np.isfinite(v).any() else 0), np.isnan(v)]
            )
        elif c.kind in ("categorical", "boolean"):
            x = pd.factorize(s.astype(str).where(s.notna(), "\0missing"))[0][:, None]
        else:
            continue
        leaf = max(5, len(rows) // 100)
        tree = DecisionTreeClassifier(max_depth=3, min_samples_leaf=leaf, random_state=0)
        accuracy = float(tree.fit(x, y).score(x, y))
        if accuracy >= LEAK_ACCURACY:
            leaks.append((c.name, accuracy))
    if leaks:
        named = ", ".join(f"'{n}' ({a:.1%} of the rows)" for n, a in leaks)
        warnings.append(
            f"column(s) {named} alone give the target '{target}' on the real rows, so utility "
            "scores mostly say whether a generator kept that one rule; leave such a column out "
            "or choose another target to measure more than that"
        )


def _missing_columns(
    schema: Schema, synthetic: pd.DataFrame, holdout: pd.DataFrame | None, warnings: list[str]
) -> list[str]:
    """The modelled columns the synthetic table or the holdout lacks (warned about)."""
    missing = [c.name for c in schema.modelled if c.name not in synthetic.columns]
    extra = [c for c in synthetic.columns if c not in schema]
    if missing:
        warnings.append(
            f"the synthetic table lacks column(s) {', '.join(map(repr, missing))}; "
            "every metric leaves them out"
        )
    if extra:
        warnings.append(
            f"the synthetic table has column(s) the real one lacks: "
            f"{', '.join(map(repr, map(str, extra)))}; they are ignored"
        )
    if holdout is not None:
        hmiss = [c.name for c in schema.modelled if c.name not in holdout.columns]
        if hmiss:
            warnings.append(
                f"the holdout lacks column(s) {', '.join(map(repr, hmiss))}; "
                "every metric leaves them out"
            )
            missing += hmiss
    return missing


def _coerced(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None,
    schema: Schema,
    missing: list[str],
    warnings: list[str],
) -> tuple[pd.DataFrame, pd.DataFrame | None, list[str]]:
    """Synthetic and holdout columns brought to the real kinds, and the columns kept.

    A column is left out when a table lacks it or every real value is missing.
    """
    keep = []
    synthetic = synthetic.copy()
    for c in schema.modelled:
        if c.name in missing:
            continue
        if real[c.name].isna().all():
            warnings.append(f"column '{c.name}' is missing in every real row; it is left out")
            continue
        s, note = _coerce(synthetic[c.name], c.kind, c.name, c.categories)
        if note:
            warnings.append(note)
        synthetic[c.name] = s
        if holdout is not None:
            h, note = _coerce(holdout[c.name], c.kind, c.name, c.categories, what="holdout")
            if note:
                warnings.append(note)
            holdout = holdout.assign(**{c.name: h})
        keep.append(c.name)
    return synthetic, holdout, keep


def _coerce(
    s: pd.Series,
    kind: str,
    name: str,
    categories: tuple[object, ...] | None = None,
    *,
    what: str = "synthetic",
) -> tuple[pd.Series, str | None]:
    """Bring a column to the real column's kind; say how many values did not fit.

    Categorical values are mapped onto the real categories, so ``1`` (int), ``1.0`` (float) and
    ``"1"`` (text) are one category whichever way a file stored them.
    """
    if kind in ("categorical", "boolean"):
        return _match_categories(s, categories or (), name, what)
    if kind in ("numeric", "integer"):
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            return s, None
        out = pd.to_numeric(s, errors="coerce")
    elif kind == "datetime":
        if pd.api.types.is_datetime64_any_dtype(s):
            return s, None
        out = pd.to_datetime(s, errors="coerce")
    else:
        return s, None
    bad = int((out.isna() & s.notna()).sum())
    if bad == 0:
        return out, None
    example = s[out.isna() & s.notna()].iloc[0]
    return out, (
        f"{what} column '{name}' should be {kind} but {bad} of its values are not "
        f"(e.g. {example!r}); they count as missing"
    )


def _key(v: object) -> str:
    """A comparison key under which 1, 1.0, "1" and True-like spellings of a number agree."""
    text = str(v).strip()
    try:
        f = float(text)
    except ValueError:
        return text
    return repr(f) if f == f else text


def _match_categories(
    s: pd.Series, categories: tuple[object, ...], name: str, what: str
) -> tuple[pd.Series, str | None]:
    if not categories:
        return s, None
    exact = {c: c for c in categories}
    by_key = {_key(c): c for c in categories}
    uniques = s.dropna().unique()
    mapping: dict[object, object] = {}
    unknown = []
    for u in uniques:
        try:
            hit = exact.get(u)
        except TypeError:  # unhashable
            hit = None
        if hit is None:
            hit = by_key.get(_key(u))
        if hit is None:
            unknown.append(u)
        else:
            mapping[u] = hit
    if all(str(k) == str(v) for k, v in mapping.items()) and not unknown:
        return s, None
    out = s.astype(object).map(lambda v: mapping.get(v, v) if pd.notna(v) else None)
    if not unknown:
        return out, None
    n_bad = int(s.isin(unknown).sum())
    return out, (
        f"{what} column '{name}' has {n_bad} value(s) that are not real categories "
        f"(e.g. {unknown[0]!r}); they are compared as categories of their own"
    )
