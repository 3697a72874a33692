"""The structure-violation metric: orders and exact sums of real registries, against pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from healthsynth.data import infer_schema, train_holdout_split
from healthsynth.evaluate import evaluate, get_metric
from healthsynth.evaluate.clinical.structure_violations import compute
from healthsynth.generators import registry
from tests.helpers import real


@pytest.fixture(scope="module")
def jasa():
    df = real("survival/jasa")
    train, holdout = train_holdout_split(df, holdout=0.2, seed=0)
    return train, holdout, infer_schema(df, target="fustat")


def test_independent_columns_break_the_registry_dates_and_durations(jasa):
    train, holdout, schema = jasa
    # a real generator that keeps each column and loses every relation between them
    syn = registry.create("marginals", seed=0).fit(train, schema=schema).sample(2000, seed=1)
    overall, *per = compute(real=train, synthetic=syn, holdout=holdout, schema=schema)
    assert overall.name == "structure_violation_rate" and overall.status == "ok"
    by = {r.subgroup: r for r in per}
    assert "order:accept.dt <= fu.date" in by and "sum:fu.date = accept.dt + futime" in by
    # counted independently with pandas
    fu, acc = pd.to_datetime(syn["fu.date"]), pd.to_datetime(syn["accept.dt"])
    assert by["order:accept.dt <= fu.date"].value == pytest.approx((fu < acc).mean())
    exact = (fu - acc).dt.days == syn["futime"]
    assert by["sum:fu.date = accept.dt + futime"].value == pytest.approx(1 - exact.mean())
    when = by["missing:tx.date, wait.time missing exactly when transplant is 0"]
    miss = syn[["tx.date", "wait.time"]].isna()
    broken = (syn["transplant"] == 0) & ~miss.all(axis=1)
    broken |= (syn["transplant"] != 0) & miss.any(axis=1)
    assert when.value == pytest.approx(broken.mean()) and when.value > 0.2
    lo, hi = overall.interval
    assert overall.value > 0.9 and lo <= overall.value <= hi + 1e-9
    # the real holdout keeps them: the relations are real, not artefacts of the training rows
    assert overall.reference == 0.0 and by["order:accept.dt <= fu.date"].reference == 0.0


def test_real_rows_score_zero_and_plain_tables_are_not_applicable(jasa):
    train, holdout, schema = jasa
    overall = compute(real=train, synthetic=holdout, holdout=None, schema=schema)[0]
    assert overall.value == 0.0 and overall.reference == 0.0
    gbsg = real("survival/gbsg")
    (rec,) = compute(real=gbsg, synthetic=gbsg, schema=infer_schema(gbsg))
    assert rec.status == "not_applicable" and "no order" in rec.message
    # pbc: the six measurements the trial did not take for its 106 other patients
    pbc = real("survival/pbc")
    overall, group = compute(real=pbc, synthetic=pbc, schema=infer_schema(pbc))
    assert group.subgroup == "missing:trt, ascites, hepato, spiders, alk.phos, ast missing together"
    assert overall.value == 0.0
    assert get_metric("structure_violations") is compute


def test_in_the_portfolio(jasa):
    train, holdout, schema = jasa
    syn = train.sample(200, replace=True, random_state=0).reset_index(drop=True)
    syn.loc[:9, "futime"] = syn.loc[:9, "futime"] + 1  # ten durations off by a day
    res = evaluate(
        real=train, synthetic=syn, holdout=holdout, schema=schema,
        metrics=["structure_violations"],
    )  # fmt: skip
    (overall,) = [r for r in res["records"] if r["subgroup"] is None]
    assert overall["value"] == pytest.approx(10 / 200)
    assert np.isfinite(overall["reference"])


def test_two_times_equal_under_a_category_are_checked():
    # survival/mgus2: who did not progress has the progression time equal to the follow-up time
    from healthsynth.knowledge import ColumnOrder, learn_equal_when

    mgus2 = real("survival/mgus2")
    train, holdout = train_holdout_split(mgus2, holdout=0.2, seed=0)
    schema = infer_schema(mgus2, target="death")
    found, record = learn_equal_when(train, schema, [ColumnOrder("ptime", "futime")])
    assert record == {"equal_when": ["ptime = futime when pstat is 0"]}
    assert found[0].value == 0 and isinstance(found[0].value, int)
    syn = holdout.copy()
    moved = syn.index[syn["pstat"] == 0][:7]
    syn.loc[moved, "futime"] += 30  # seven patients followed a month past a progression time
    overall, *per = compute(real=train, synthetic=syn, holdout=holdout, schema=schema)
    by = {r.subgroup: r for r in per}
    assert by["equal:ptime = futime when pstat is 0"].value == pytest.approx(7 / len(syn))
    assert by["order:ptime <= futime"].value == 0.0  # the order alone does not see it
    assert overall.value == pytest.approx(7 / len(syn)) and overall.reference == 0.0
    # pstat = 1 rows may tie or not: changing one of them breaks nothing
    syn = holdout.copy()
    syn.loc[syn.index[syn["pstat"] == 1][:3], "futime"] += 30
    assert compute(real=train, synthetic=syn, holdout=holdout, schema=schema)[0].value == 0.0
