from __future__ import annotations

import json

import pytest

from healthsynth.data import infer_schema, train_holdout_split
from healthsynth.errors import ParameterError
from healthsynth.evaluate import METRICS, evaluate, run_metric
from tests.helpers import real


def test_evaluate_returns_plain_json_for_every_metric():
    df = real("survival/colon", 600)
    schema = infer_schema(df, target="status")
    train, hold = train_holdout_split(df, holdout=0.3, seed=0)
    res = evaluate(real=train, synthetic=hold, holdout=hold, schema=schema)
    json.dumps(res)
    names = {r["name"] for r in res["records"]}
    assert {
        "column_distance",
        "dependence_difference",
        "detection_auc",
        "tstr_auc",
        "dcr_median_ratio",
    } <= names
    assert all(r["seconds"] is not None and r["status"] == "ok" for r in res["records"])
    assert set(METRICS) == {
        "column_distance",
        "dependence_difference",
        "detection_auc",
        "tstr",
        "dcr",
    }


def test_unknown_metric_lists_valid_ones_and_failures_are_recorded():
    df = real("MASS/Pima.tr")
    with pytest.raises(ParameterError, match="known metrics: column_distance"):
        evaluate(real=df, synthetic=df, metrics=["nope"])
    (rec,) = run_metric(
        "column_distance",
        real=df,
        synthetic=df.drop(columns="age"),
        holdout=None,
        schema=infer_schema(df),
    )
    assert rec.status == "failed" and "age" in rec.message
