"""The metric registry: names, kinds, errors, plugins through entry points, and the glossary."""

from __future__ import annotations

import textwrap

import pytest

from healthsynth.errors import ParameterError
from healthsynth.evaluate import (
    METRICS,
    TIMELINE_METRICS,
    Measure,
    MetricInfo,
    MetricRegistry,
    evaluate,
    evaluate_timelines,
    registry,
)
from tests.helpers import real

PLUGIN = '''
"""A metric shipped by another package.

Card
----
What: the share of synthetic rows among all rows.
Range: 0 to 1.
Direction: target.
Reference: the holdout's share among training and holdout rows.
Limitations: counts rows only.
Citation: none; a test plugin.
"""

from healthsynth.evaluate import Measure, MetricInfo, MetricRecord

INFO = MetricInfo(
    name="row_share",
    dimension="diversity",
    kind="table",
    summary="A plugin metric.",
    measures=(Measure("row_share", "target", "Share of synthetic rows among all rows.", 0, 1),),
)


def compute(*, real, synthetic, holdout=None):
    ref = None if holdout is None else len(holdout) / (len(real) + len(holdout))
    value = len(synthetic) / (len(real) + len(synthetic))
    return [MetricRecord("row_share", "diversity", value, "target", reference=ref)]
'''


def test_views_and_kinds():
    assert list(METRICS) == registry.names("table") and "tstr" in METRICS
    assert METRICS["tstr"] == "healthsynth.evaluate.utility.tstr"
    assert list(TIMELINE_METRICS) == registry.names("timelines")
    assert "tstr" not in TIMELINE_METRICS and "timeline_tstr" not in METRICS
    with pytest.raises(KeyError):
        METRICS["timeline_tstr"]
    assert registry.kind("timeline_dcr") == "timelines"


def test_unknown_and_wrong_kind_names_are_one_clear_error():
    df = real("MASS/Pima.tr", 60)
    with pytest.raises(ParameterError, match=r"metric 'nope' is not known; known metrics: anon"):
        evaluate(real=df, synthetic=df, metrics=["nope"])
    with pytest.raises(ParameterError, match="'event_order' is a timeline metric: run it with "):
        evaluate(real=df, synthetic=df, metrics=["column_distance", "event_order"])
    with pytest.raises(ParameterError, match="'tstr' is a table metric: run it with healthsynth"):
        evaluate_timelines(real=None, synthetic=None, metrics=["tstr"])  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="known timeline metrics: cooccurrence_r2"):
        registry.resolve(["nope"], kind="timelines")


def test_a_module_that_breaks_the_contract_is_refused_with_its_cause():
    reg = MetricRegistry(groups={})
    reg.register("no_info", "healthsynth.evaluate._base", kind="table")
    with pytest.raises(ImportError, match="has no INFO"):
        reg.load("no_info")
    reg.register("tstr", "healthsynth.evaluate.utility.tstr", kind="timelines")
    with pytest.raises(ImportError, match="registered as 'tstr' for timelines data"):
        reg.load("tstr")
    reg.register("gone", "healthsynth.evaluate.not_a_module", kind="table")
    with pytest.raises(ImportError, match=r"metric 'gone' \(healthsynth.evaluate.not_a_m"):
        reg.load("gone")
    with pytest.raises(ParameterError, match="already registered"):
        reg.register("tstr", "elsewhere.tstr", kind="table")
    with pytest.raises(ParameterError, match="kind must be one of table, timelines"):
        reg.register("x", "x", kind="image")  # type: ignore[arg-type]


def test_info_is_checked_when_declared():
    with pytest.raises(ParameterError, match="direction 'up'"):
        Measure("m", "up", "x")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="low must not exceed high"):
        Measure("m", "lower", "x", low=1, high=0)
    with pytest.raises(ParameterError, match="declares no measures"):
        MetricInfo("m", "fidelity", "table", "x", ())
    head = Measure("m", "lower", "x.", low=0, high=1)
    info = MetricInfo("metric", "fidelity", "table", "What it does.", (head,))
    assert info.direction == "lower" and info.range == (0, 1)
    assert info.record_names == ("m", "metric")
    assert info.describe("metric")["summary"] == "What it does."
    assert info.describe("other") is None
    assert head.range_text() == "0 to 1"
    assert Measure("m", "lower", "x", low=0).range_text() == "at least 0"


def test_a_plugin_metric_from_an_entry_point_runs_and_is_described(tmp_path, monkeypatch):
    (tmp_path / "hs_plugin_metric.py").write_text(PLUGIN, encoding="utf-8")
    info = tmp_path / "hs_plugin_metric-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: hs-plugin-metric\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            """\
            [healthsynth.metrics]
            row_share = hs_plugin_metric
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = MetricRegistry()
    assert reg.names("table")[-1] == "row_share" and "row_share" not in reg.names("timelines")
    assert reg.describe("row_share")["summary"] == "Share of synthetic rows among all rows."
    import healthsynth.evaluate._evaluate as table_evaluate
    import healthsynth.evaluate._runner as runner

    monkeypatch.setattr(table_evaluate, "registry", reg)
    monkeypatch.setattr(runner, "registry", reg)
    df = real("MASS/Pima.tr")
    res = evaluate(real=df.iloc[:100], synthetic=df.iloc[100:150], metrics=["row_share"])
    (rec,) = res["records"]
    assert rec["name"] == "row_share" and rec["value"] == pytest.approx(50 / 150)
    assert res["meta"]["glossary"]["row_share"]["range"] == "0 to 1"


def test_every_declared_record_name_has_a_glossary_entry():
    seen = {}
    for name in registry.names():
        for m in registry.info(name).measures:
            entry = registry.describe(m.name, registry.kind(name))
            assert entry is not None and entry["summary"], m.name
            seen[m.name] = entry
    # the record names the report glossary used to list by hand are all still described
    assert {
        "tstr_auc",
        "alpha_precision",
        "beta_recall",
        "subgroup_tstr_auc",
        "sample_llm_cached_requests",
        "sample_patients_per_second",
        "timeline_violations",
    } <= set(seen)
    assert seen["tstr_ece"]["direction"] == "lower"
    assert seen["fit_wall_seconds"]["unit"] == "s"
