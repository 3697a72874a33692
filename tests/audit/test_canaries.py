"""The canary audit: exposure's known answers, the canaries, and memorisation caught."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from healthsynth.audit import CHANCE_EXPOSURE, canary_audit, draw_records, exposure
from healthsynth.data import infer_schema
from healthsynth.data._rows import row_keys
from healthsynth.errors import ParameterError, SchemaValidationError
from healthsynth.generators.marginals import IndependentMarginals as Marginals
from healthsynth.generators.tabular_lm import TabularLM
from healthsynth.knowledge import Predicate, Rule, RuleSet
from tests.helpers import real


def test_exposure_known_answers():
    cand = np.arange(1, 1024, dtype=float)  # 1,023 candidates: log2(N + 1) = 10 bits
    got = exposure(np.array([5000.0, 0.0, 1023.0, 512.0]), cand)
    # first: 10 bits; last: rank 1024 -> 0 bits; tie with the top candidate: rank 1.5
    np.testing.assert_allclose(got[:3], [10.0, 0.0, 10 - math.log2(1.5)])
    assert got[3] == pytest.approx(10 - math.log2(1 + 511 + 0.5))
    # a record drawn like the candidates averages 1/ln 2 bits
    rng = np.random.default_rng(0)
    null = [exposure(rng.normal(size=1), rng.normal(size=999))[0] for _ in range(4000)]
    assert np.mean(null) == pytest.approx(CHANCE_EXPOSURE, abs=0.06)


def test_canaries_are_new_combinations_of_real_values():
    df = real("survival/pbc")
    schema = infer_schema(df, identifiers=["id"])
    rules = RuleSet([Rule("old", when=(), then=Predicate("age", minimum=40))])
    out = draw_records(df, schema, 30, np.random.default_rng(1), rules=rules)
    assert list(out.columns) == list(df.columns) and len(out) == 30
    assert (out.dtypes == df.dtypes).all()
    real_keys = set(row_keys(df, schema.modelled))
    keys = row_keys(out, schema.modelled)
    assert len(set(keys)) == 30 and not set(keys) & real_keys
    for c in schema.modelled:  # every value is one the column had (missing included)
        seen = set(df[c.name].dropna().tolist())
        assert set(out[c.name].dropna().tolist()) <= seen, c.name
    assert (out["age"] >= 40).all()
    assert out["id"].tolist() == list(range(int(df["id"].max()) + 1, int(df["id"].max()) + 31))


def test_audit_detects_a_model_that_memorises():
    """A tiny model overfitted on 80 rows singles its canaries out; the reference does not."""
    df = real("MASS/Pima.tr", 80)
    gen = TabularLM(
        n_embd=32,
        n_layer=2,
        n_head=2,
        epochs=300,
        dropout=0.0,
        early_stopping=False,
        privacy_stop=False,
        seed=0,
    ).fit(df)
    res = canary_audit(gen, df, canaries=8, candidates=1000, samples=2000, seed=0)
    mean, top = res["records"][0], res["records"][1]
    assert mean.name == "canary_exposure" and mean.subgroup is None and top.subgroup == "max"
    trained = np.array(mean.details["trained"])
    assert res["meta"]["canaries_in_training"] == trained.sum() >= 4
    assert mean.value > CHANCE_EXPOSURE + 3 and mean.reference < CHANCE_EXPOSURE + 1.5
    assert mean.details["p_value"] < 0.05 and mean.details["distinguishable"]
    assert top.value > 8 and mean.details["max_possible"] == pytest.approx(
        math.log2(1001), abs=1e-4
    )
    assert len(res["canaries"]) == 8
    names = [(r.name, r.subgroup) for r in res["records"]]
    assert names[2:] == [("canary_reproduced", "exact"), ("canary_reproduced", "near")]
    assert all(r.reference is not None for r in res["records"])


def test_generators_without_a_likelihood_get_reproduction_only():
    df = real("MASS/Pima.tr", 120)
    gen = Marginals(seed=0).fit(df)
    res = canary_audit(gen, df, canaries=3, candidates=50, samples=500, seed=0)
    exp = res["records"][0]
    assert exp.status == "not_applicable" and "no per-row likelihood" in exp.message
    rep = {r.subgroup: r for r in res["records"][1:]}
    assert set(rep) == {"exact", "near"} and rep["exact"].details["samples"] == 500


def test_bad_audit_input():
    df = real("MASS/Pima.tr", 60)
    gen = Marginals(seed=0).fit(df)
    with pytest.raises(ParameterError, match="'canaries' must be a whole number of at least 1"):
        canary_audit(gen, df, canaries=0)
    with pytest.raises(SchemaValidationError):
        canary_audit(gen, df.drop(columns="glu"))
    with pytest.raises(ParameterError, match="'samples' must be a whole number"):
        canary_audit(gen, df, samples=1.5)
    with pytest.raises(ParameterError, match="re-fits table generators"):
        from healthsynth.generators.timeline_lm import TimelineLM

        tl = TimelineLM()
        tl.model_ = object()  # fitted enough for the check
        tl.schema_ = gen.schema_
        canary_audit(tl, pd.DataFrame())
