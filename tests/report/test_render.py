from __future__ import annotations

import html
import json
import re

import pytest

from healthsynth.errors import ParameterError
from healthsynth.evaluate import evaluate
from healthsynth.report import _plots, render_html, scores_json, verdict, write_report
from healthsynth.report._plots import MAX_COLUMN_PLOTS
from healthsynth.report._render import _fmt_amount
from tests.helpers import real
from tests.report.conftest import PLOTS_IN_RECORDS, XSS, record


def plot_count(page: str) -> int:
    m = re.search(r'data-plot-count="(\d+)"', page)
    assert m is not None
    return int(m.group(1))


@pytest.mark.parametrize(
    ("value", "reference", "direction", "interval", "expected"),
    [
        (0.80, 0.82, "higher", None, "near"),  # 0.02 worse, 10% of 0.82 allowed
        (0.60, 0.82, "higher", None, "far"),
        (0.90, 0.82, "higher", None, "within"),  # better than real
        (0.60, 0.82, "higher", [0.55, 0.85], "within"),  # reference inside the interval
        (0.055, 0.05, "lower", None, "near"),  # small scale: 0.01 absolute allowed
        (0.08, 0.05, "lower", None, "far"),
        (0.03, 0.05, "lower", None, "within"),
        (0.52, 0.50, "target", None, "near"),
        (0.48, 0.50, "target", None, "near"),  # either side of a target is worse
        (0.70, 0.50, "target", None, "far"),
        (0.50, 0.50, "target", None, "within"),
        (0.7, None, "higher", None, "unjudged"),
        (None, 0.5, "higher", None, "missing"),
        (float("nan"), 0.5, "higher", None, "missing"),
    ],
)
def test_verdict_known_answers(value, reference, direction, interval, expected):
    assert verdict(value, reference, direction, interval) == expected


def test_all_sections_tables_and_plots(hand_result):
    page = render_html(hand_result)
    for dim in ("fidelity", "utility", "privacy", "diversity", "fairness", "clinical", "cost"):
        assert f'<section id="{dim}">' in page
    assert plot_count(page) == PLOTS_IN_RECORDS
    assert page.count('<figure class="plot') == PLOTS_IN_RECORDS
    assert page.count("<svg") == PLOTS_IN_RECORDS
    # rules table, cost table with units, failed and not-applicable records with their message
    assert "no-preg" in page and "healthsynth.knowledge" in page
    assert "MiB" in page and "train_seconds" in page
    assert "not_applicable</span>: no categorical column" in page
    assert "failed</span>: ValueError: column " in page
    # header
    assert "MASS/Pima.tr" in page and "tabular_lm" in page and "3.11" in page


def test_scorecard_headlines(hand_result):
    page = render_html(hand_result)
    card = page.split('<section id="scorecard">')[1].split("</section>")[0]
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(r'<td><a href="#(\w+)">\w+</a></td>(.*?)</tr>', card, re.DOTALL)
    }
    assert len(rows) == 7
    assert "column_distance" in rows["fidelity"] and "far from reference" in rows["fidelity"]
    # 0.78 against 0.82 is "near", but the reference lies inside the interval [0.7, 0.85]
    assert "tstr_auc" in rows["utility"] and "within reference" in rows["utility"]
    assert "dcr_median_ratio" in rows["privacy"] and "within reference" in rows["privacy"]
    # fairness has only subgroup records: the one furthest from its reference is shown
    assert "worst subgroup" in rows["fairness"] and "sex=f" in rows["fairness"]
    assert "coverage" in rows["diversity"] and "not_applicable" in rows["diversity"]
    assert "rule_violation_rate" in rows["clinical"] and "[rule:" not in rows["clinical"]


def test_data_text_is_escaped_everywhere(hand_result):
    page = render_html(hand_result)
    assert "<script" not in page.lower()
    assert "<b>other</b>" not in page
    assert html.escape(XSS) in page  # shown as text in tables, header and messages
    # the SVG plots carry no raw markup from the data either
    for svg in re.findall(r"<svg.*?</svg>", page, re.DOTALL):
        assert "alert(1)</script>" not in svg


def test_no_network_assets(hand_result):
    page = render_html(hand_result)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "@import" not in page
    assert not re.search(r"url\(\s*['\"]?(?!#)", page)  # only in-page references
    assert "<link" not in page and "<script" not in page


@pytest.mark.parametrize(
    "result",
    [
        {"records": []},
        {"records": [], "seconds": None, "meta": None},
        {
            "records": [
                record("tstr", "utility", None, status="not_applicable", message="no target")
            ]
        },
        {"records": [record("x", "fidelity", None, status="failed", message="boom")], "meta": {}},
        {"records": [record("odd", "mystery", 1.0, details={"distributions": "nope"})]},
    ],
)
def test_renders_any_subset(result):
    page = render_html(result)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert plot_count(page) == 0
    for r in result["records"]:
        assert r["name"] in page
        if r["message"]:
            assert r["message"] in page


def test_malformed_details_are_skipped():
    recs = [
        record("column_distance", "fidelity", 0.1, details={"distributions": {"a": {"kind": "x"}}}),
        record(
            "dependence_difference",
            "fidelity",
            0.1,
            details={"columns": ["a", "b"], "difference": [[1.0]]},
        ),
        record("dcr_median_ratio", "privacy", 1.0, details={"histogram": {"edges": [0, 1]}}),
    ]
    page = render_html({"records": recs})
    assert plot_count(page) == 0
    assert "could not be drawn" not in page


def test_column_plots_are_capped(monkeypatch):
    assert MAX_COLUMN_PLOTS == 24
    monkeypatch.setattr(_plots, "MAX_COLUMN_PLOTS", 2)  # drawing 24 plots would be slow
    dist = {
        f"c{i}": {
            "kind": "categorical",
            "labels": ["a", "b"],
            "real": [0.5, 0.5],
            "synthetic": [0.4, 0.6],
            "holdout": None,
        }
        for i in range(5)
    }
    plots, left_out = _plots.distribution_plots(dist, limit=1)
    assert (len(plots), left_out) == (1, 4)
    page = render_html(
        {"records": [record("column_distance", "fidelity", 0.1, details={"distributions": dist})]}
    )
    assert plot_count(page) == 2
    assert "Only the first 2 columns are plotted; 3 more" in page


def test_bad_input_is_one_clear_error():
    with pytest.raises(ParameterError, match="'records' list"):
        render_html({"scores": []})  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match=r"records'\]\[1\]"):
        render_html({"records": [record("a", "cost", 1.0), "oops"]})


def test_write_report_files(tmp_path, hand_result):
    hand_result["records"].append(record("nan_metric", "fidelity", float("nan")))
    out = tmp_path / "new" / "folder"
    path = write_report(hand_result, out)
    assert path == out / "report.html"
    assert sorted(p.name for p in out.iterdir()) == [
        ".healthsynth-manifest.json",
        "report.html",
        "scores.json",
    ]
    scores = json.loads((out / "scores.json").read_text(encoding="utf-8"))
    assert scores["records"][-1]["value"] is None  # strict JSON: NaN becomes null
    assert scores["meta"]["sensitive"] == [XSS]
    assert scores_json(hand_result).startswith("{\n  ")


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(ParameterError, match="JSON"):
        write_report({"records": [record("a", "cost", 1.0, details={"x": object()})]}, tmp_path)
    assert list(tmp_path.iterdir()) == []


LLM_SAMPLING = {
    "seconds": 95.25,
    "rows_per_second": 2.1,
    "tokens_in": 182_400,
    "tokens_out": 61_250,
    "cost_usd": 0.0731,
    "requests": 1_240,
    "cached_requests": 12,
    "llm_seconds": 88.5,
}


def _resources(page: str) -> dict[str, tuple[str, str]]:
    table = page.split("<h3>Resources</h3>")[1].split("</table>")[0]
    cells = re.findall(
        r'<tr><td>(\w+)</td><td class="num">([^<]*)</td><td>([^<]*)</td></tr>', table
    )
    return {name: (value, unit) for name, value, unit in cells}


def test_llm_cost_figures_are_shown_readably():
    df = real("MASS/Pima.tr")
    train, hold = df.iloc[:150], df.iloc[150:]
    res = evaluate(
        real=train, synthetic=hold, holdout=hold, sampling=LLM_SAMPLING, metrics=["cost"]
    )
    page = render_html(res)
    assert _resources(page) == {
        "sample_wall_seconds": ("95.25", "s"),
        "sample_rows_per_second": ("2.1", "rows/s"),
        "sample_tokens_in": ("182,400", "tokens"),
        "sample_tokens_out": ("61,250", "tokens"),
        "sample_cost_usd": ("0.0731", "USD"),
        "sample_llm_requests": ("1,240", "requests"),
        "sample_llm_cached_requests": ("12", "requests"),
        "sample_llm_seconds": ("88.5", "s"),
    }
    assert "1.824e+05" not in page  # the generic 4-digit format is not used for counts
    assert "LLM requests answered from the response cache while sampling" in page
    # no price known: the figure is simply absent
    res = evaluate(
        real=train,
        synthetic=hold,
        holdout=hold,
        sampling={**LLM_SAMPLING, "cost_usd": None},
        metrics=["cost"],
    )
    page = render_html(res)
    assert "sample_cost_usd" not in page
    assert _resources(page)["sample_llm_requests"] == ("1,240", "requests")


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (182400.0, "tokens", "182,400"),
        (3.0, "requests", "3"),
        (0.0000731, "USD", "0.0000731"),
        (12.3456, "USD", "12.35"),
        (1234567.8, "s", "1,234,568"),
        (0.0, "s", "0"),
        (2.5, "count", "2.5"),  # not a whole number: not rounded away
        (0.0000731, None, "7.31e-05"),  # without a unit: the generic format
        (None, "s", "—"),
    ],
)
def test_amount_format_known_answers(value, unit, expected):
    assert _fmt_amount(value, unit) == expected
