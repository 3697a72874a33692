from __future__ import annotations

import json

import pandas as pd

from healthsynth.demo import run_demo


def test_demo_end_to_end_on_a_small_real_table(tmp_path):
    result = run_demo(output=tmp_path, dataset="MASS/Pima.tr", target="type", max_time=10, seed=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "comparison.json",
        "model",
        "synthetic.csv",
    ]
    saved = json.loads((tmp_path / "comparison.json").read_text())
    assert saved["n_train"] == 160 and saved["n_holdout"] == 40
    names = {r["name"] for r in saved["scores"]["records"]}
    assert {"detection_auc", "tstr_auc", "dcr_median_ratio"} <= names
    assert len(pd.read_csv(tmp_path / "synthetic.csv")) == 160
    assert result["sample_rows_per_second"] > 0
