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


LLM_RUN = {
    "seconds": 95.0,
    "rows_per_second": 2.1,
    "tokens_in": 182_400,
    "tokens_out": 61_250,
    "cost_usd": 0.0731,
    "requests": 40,
    "cached_requests": 12,
    "llm_seconds": 88.5,
}


def test_llm_requests_cache_and_waiting_are_reported_from_both_records():
    df = real("MASS/Pima.tr")
    training = {"generator": "prompted-llm", "fit_seconds": 3.0, "requests": 2, "llm_seconds": 1.5}
    recs = resources.compute(
        real=df, synthetic=df, schema=infer_schema(df), training=training, sampling=LLM_RUN
    )
    by = {r.name: r for r in recs}
    assert by["sample_llm_requests"].value == 40
    assert by["sample_llm_cached_requests"].value == 12
    assert by["sample_llm_seconds"].value == 88.5
    assert by["sample_tokens_out"].value == 61_250 and by["sample_cost_usd"].value == 0.0731
    assert by["fit_llm_requests"].value == 2 and by["fit_llm_seconds"].value == 1.5
    assert "fit_llm_cached_requests" not in by  # not in the training record
    assert by["sample_llm_requests"].details == {
        "unit": "requests",
        "source": "sampling",
        "generator": "prompted-llm",
    }
    assert by["sample_llm_seconds"].details["unit"] == "s"
    assert by["sample_llm_requests"].direction == "lower"
    assert by["sample_llm_cached_requests"].direction == "higher"  # a cache hit costs nothing


def test_unknown_price_is_left_out_not_a_crash():
    df = real("MASS/Pima.tr")
    for missing in (None, float("nan"), "unknown"):
        recs = resources.compute(
            real=df,
            synthetic=df,
            schema=infer_schema(df),
            sampling={**LLM_RUN, "cost_usd": missing},
        )
        names = {r.name for r in recs}
        assert "sample_cost_usd" not in names
        assert {"sample_tokens_in", "sample_llm_requests", "sample_llm_seconds"} <= names
