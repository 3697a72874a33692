from __future__ import annotations

from healthsynth.data import infer_schema
from healthsynth.evaluate.cost import resources
from tests.helpers import real


def test_cost_reads_the_model_and_run_records(pima_model):
    df = real("MASS/Pima.tr")
    recs = resources.compute(
        real=df,
        synthetic=df,
        schema=infer_schema(df),
        training=pima_model.training_record_,
        sampling={"seconds": 2.0, "rows_per_second": 100.0, "peak_rss_mb": 500.0},
    )
    by = {r.name: r for r in recs}
    assert by["fit_wall_seconds"].value == pima_model.training_record_["fit_seconds"]
    assert by["model_parameters"].details["unit"] == "count"
    assert by["sample_rows_per_second"].direction == "higher"
    assert by["sample_wall_seconds"].value == 2.0
    assert "fit_cost_usd" not in by  # a local model has no API bill


def test_api_tokens_and_money_are_reported():
    df = real("MASS/Pima.tr")
    recs = resources.compute(
        real=df,
        synthetic=df,
        schema=infer_schema(df),
        sampling={"seconds": 9.0, "tokens_in": 1200, "tokens_out": 3400, "cost_usd": 0.02},
    )
    by = {r.name: r.value for r in recs}
    assert by["sample_tokens_in"] == 1200 and by["sample_cost_usd"] == 0.02


def test_not_applicable_without_records():
    df = real("MASS/Pima.tr")
    (rec,) = resources.compute(real=df, synthetic=df, schema=infer_schema(df))
    assert rec.status == "not_applicable" and "--model" in rec.message
