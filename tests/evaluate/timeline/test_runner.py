from __future__ import annotations

import json
from functools import lru_cache

import pandas as pd
import pytest

from healthsynth.data import load_timelines
from healthsynth.errors import ParameterError
from healthsynth.evaluate import evaluate_timelines
from healthsynth.evaluate.timeline import TIMELINE_METRICS
from healthsynth.report import render_html
from tests.evaluate.timeline._data import nafld_three_way, tables_copy, with_tables


@lru_cache(maxsize=1)
def _fresh_result() -> dict:
    train, hold, fresh = nafld_three_way()
    return evaluate_timelines(real=train, synthetic=fresh, holdout=hold, code_map="nafld", seed=0)


def _overall(result: dict) -> dict[str, dict]:
    return {r["name"]: r for r in result["records"] if r["subgroup"] is None}


def test_fresh_real_patients_score_like_the_holdout():
    result = _fresh_result()
    json.dumps(result)  # plain data
    recs = _overall(result)
    assert set(TIMELINE_METRICS) <= set(recs)
    assert not [r for r in result["records"] if r["status"] == "failed"]
    assert recs["timeline_cost"]["status"] == "not_applicable"
    ok = [n for n in TIMELINE_METRICS if n != "timeline_cost"]
    assert all(recs[n]["status"] == "ok" and recs[n]["reference"] is not None for n in ok)
    assert recs["event_prevalence_r2"]["value"] > 0.9
    assert recs["cooccurrence_r2"]["value"] > 0.8
    assert recs["events_per_patient"]["value"] < 0.2
    assert recs["time_between_events"]["value"] < 0.1
    assert recs["event_order"]["value"] < 0.15
    assert recs["lab_trajectories"]["value"] < 0.5
    assert 0.85 < recs["timeline_dcr"]["value"] < 1.15
    viol = recs["timeline_violations"]
    assert abs(viol["value"] - viol["reference"]) < 0.03
    tstr = recs["timeline_tstr"]
    assert tstr["value"] > 0.55 and abs(tstr["value"] - tstr["reference"]) < 0.1
    assert result["meta"]["kind"] == "timelines"
    assert result["meta"]["real"]["patients"] == 750
    assert result["seconds"] > 0


def test_holdout_as_synthetic_reproduces_the_reference():
    train, hold, _ = nafld_three_way()
    result = evaluate_timelines(
        real=train,
        synthetic=hold,
        holdout=hold,
        metrics=["event_prevalence_r2", "cooccurrence_r2", "event_order", "timeline_violations"],
        code_map="nafld",
    )
    for r in result["records"]:
        assert r["value"] == pytest.approx(r["reference"]), r["name"]


def test_report_renders_the_timeline_records():
    html = render_html(_fresh_result())
    for name in TIMELINE_METRICS:
        assert name in html
    assert "kind:after_death" in html
    assert "R² of the share of patients with each item" in html  # glossary from meta
    assert "Lab trajectory: labs/hdl" in html  # the yearly mean curves are drawn


def test_unknown_metric_lists_the_valid_ones():
    train, hold, _ = nafld_three_way()
    with pytest.raises(ParameterError, match="known timeline metrics: .*event_order"):
        evaluate_timelines(real=train, synthetic=hold, metrics=["event_prevalence_r2", "nope"])


def test_inputs_must_be_datasets_with_one_kind_of_time():
    train, hold, _ = nafld_three_way()
    with pytest.raises(ParameterError, match="synthetic must be a healthsynth.data.Dataset"):
        evaluate_timelines(real=train, synthetic=hold.tables["events"])
    with pytest.raises(ParameterError, match="task key 'when'"):
        evaluate_timelines(real=train, synthetic=hold, holdout=hold, task={"when": 3})


def test_without_holdout_nothing_fails_and_nothing_mutates():
    train, _, fresh = nafld_three_way()
    before = {n: tables_copy(d) for n, d in (("train", train), ("fresh", fresh))}
    result = evaluate_timelines(real=train, synthetic=fresh, code_map="nafld")
    for name, ds in (("train", train), ("fresh", fresh)):
        for t, df in ds.tables.items():
            pd.testing.assert_frame_equal(df, before[name][t])
    recs = _overall(result)
    assert not [r for r in result["records"] if r["status"] == "failed"]
    for name in ("timeline_tstr", "timeline_dcr"):
        assert recs[name]["status"] == "not_applicable"
        assert "holdout" in recs[name]["message"]
    assert recs["event_prevalence_r2"]["reference"] is None
    assert recs["event_prevalence_r2"]["value"] > 0.9


def test_a_wide_table_without_coded_events_is_handled():
    ds = load_timelines("pbcseq")
    train, hold = ds.split(holdout=0.5, seed=0)
    result = evaluate_timelines(
        real=train,
        synthetic=hold,
        holdout=hold,
        code_map="pbcseq",
        metrics=["event_prevalence_r2", "cooccurrence_r2", "event_order", "lab_trajectories"],
    )
    recs = _overall(result)
    assert recs["cooccurrence_r2"]["status"] == "not_applicable"
    assert recs["event_order"]["status"] == "not_applicable"
    assert recs["lab_trajectories"]["status"] == "ok"
    assert recs["event_prevalence_r2"]["status"] == "ok"


def test_a_crashing_metric_becomes_a_failed_record(monkeypatch):
    from healthsynth.evaluate.timeline import prevalence

    def boom(**_):
        raise RuntimeError("broken on purpose")

    monkeypatch.setattr(prevalence, "compute", boom)
    train, hold, _ = nafld_three_way()
    result = evaluate_timelines(
        real=train, synthetic=hold, metrics=["event_prevalence_r2", "events_per_patient"]
    )
    recs = _overall(result)
    assert recs["event_prevalence_r2"]["status"] == "failed"
    assert "broken on purpose" in recs["event_prevalence_r2"]["message"]
    assert recs["events_per_patient"]["status"] == "ok"


def test_patients_are_capped_and_the_cap_recorded():
    train, hold, fresh = nafld_three_way()
    result = evaluate_timelines(
        real=train, synthetic=fresh, metrics=["event_prevalence_r2"], max_patients=300
    )
    assert result["meta"]["synthetic"]["patients"] == 300
    assert result["meta"]["synthetic"]["patients_total"] == 750
    assert any("cut to 300" in w for w in result["meta"]["warnings"])


def test_synthetic_data_without_events_fails_nothing():
    train, hold, fresh = nafld_three_way()
    empty = with_tables(
        fresh, events=fresh.tables["events"].iloc[:0], labs=fresh.tables["labs"].iloc[:0]
    )
    result = evaluate_timelines(real=train, synthetic=empty, holdout=hold, code_map="nafld")
    recs = _overall(result)
    assert not [r for r in result["records"] if r["status"] == "failed"]
    assert recs["event_prevalence_r2"]["value"] < 0
    assert recs["timeline_violations"]["status"] == "not_applicable"
    assert recs["timeline_tstr"]["value"] == 0.5
