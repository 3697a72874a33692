from __future__ import annotations

import json

import pandas as pd

from healthsynth.demo import run_demo


def test_demo_end_to_end_on_a_small_real_table(tmp_path):
    rules = tmp_path.parent / "pima-rules.yaml"
    rules.write_text("version: 1\nrules:\n  - range: {column: bmi, min: 20, max: 50}\n")
    result = run_demo(
        output=tmp_path,
        dataset="MASS/Pima.tr",
        target="type",
        sensitive=["age"],
        max_time=10,
        seed=0,
        rules=rules,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".healthsynth-manifest.json",
        "comparison.json",
        "model",
        "report",
        "synthetic.csv",
    ]
    assert (tmp_path / "report" / "report.html").stat().st_size > 10_000
    scores = json.loads((tmp_path / "report" / "scores.json").read_text())
    by = {r["name"]: r for r in scores["records"] if r["subgroup"] is None}
    assert by["rule_violation_rate"]["value"] == 0.0  # the generator kept the rule
    assert by["fit_wall_seconds"]["value"] > 0 and by["sample_rows_per_second"]["value"] > 0
    assert any(r["dimension"] == "fairness" and r["status"] == "ok" for r in scores["records"])
    saved = json.loads((tmp_path / "comparison.json").read_text())
    assert saved["n_train"] == 160 and saved["n_holdout"] == 40
    names = {r["name"] for r in saved["scores"]["records"]}
    assert {"detection_auc", "tstr_auc", "dcr_median_ratio"} <= names
    assert len(pd.read_csv(tmp_path / "synthetic.csv")) == 160
    assert result["sample_rows_per_second"] > 0


def test_packaged_demo_rules_fit_the_demo_dataset():
    from healthsynth.data import infer_schema, load_dataset
    from healthsynth.demo import _EXAMPLES
    from healthsynth.knowledge import load_rules

    df = load_dataset("survival/nafld1")
    rules = load_rules(_EXAMPLES / "nafld1.yaml")
    rules.check(infer_schema(df))
    broken = rules.violations(df).sum()
    # real data breaks the BMI limits a few times, and nothing else
    assert 0 < broken["range:bmi"] < 10 and broken.drop("range:bmi").sum() == 0
