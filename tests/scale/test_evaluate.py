"""Distributed evaluation of Parquet shards: exact where it claims to be, the same on Ray as in
one process, every record saying which rows it covers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from healthsynth.data import infer_schema, train_holdout_split
from healthsynth.errors import DataFileError, ParameterError
from healthsynth.evaluate import evaluate
from healthsynth.evaluate.fidelity.column_distance import _ks
from healthsynth.generators import registry
from healthsynth.knowledge import load_rules
from healthsynth.scale import sample
from healthsynth.scale._partials import _ks_from_counts
from healthsynth.scale.evaluate import evaluate_shards
from tests.helpers import real

METRICS = ["column_distance", "dcr", "tstr", "rule_violations", "coverage", "duplicates"]
RULES = """
version: 1
rules:
  - range: {column: bili, min: 0.3, max: 20}
  - range: {column: albumin, min: 2.5, max: 4.5}
  - name: stage-4-ascites
    if: {ascites: [1]}
    then: {stage: {min: 3}}
"""


@pytest.mark.parametrize("seed", range(6))
def test_ks_from_per_block_counts_is_the_exact_statistic(seed):
    rng = np.random.default_rng(seed)
    # ties and values outside the real range on purpose
    x = np.round(rng.normal(0, 1, 300), 1)
    y = np.round(rng.normal(0.3 * seed, 1.5, 1000), 1)
    grid = np.unique(x)
    blocks = np.array_split(y, 4)
    counts = {"n": len(y), "le": 0, "lt": 0}
    for b in blocks:
        b = np.sort(b)
        counts["le"] = counts["le"] + np.searchsorted(b, grid, side="right")
        counts["lt"] = counts["lt"] + np.searchsorted(b, grid, side="left")
    assert _ks_from_counts(counts, np.sort(x), grid) == pytest.approx(_ks(x, y), abs=1e-12)


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    df = real("survival/pbc")
    train, holdout = train_holdout_split(df, holdout=0.25, seed=0)
    gen = registry.get("marginals")(seed=0).fit(train, schema=infer_schema(train))
    root = tmp_path_factory.mktemp("shards")
    sample(gen, 9000, root / "syn", engine="local", seed=2, block_size=2000)
    rules = root / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    return train, holdout, root / "syn", load_rules(rules)


def _values(result):
    return {(r["name"], r["subgroup"]): r["value"] for r in result["records"]}


def test_all_row_metrics_match_the_single_process_metrics_on_every_row(tables):
    train, holdout, shards, rules = tables
    kw = {"real": train, "holdout": holdout, "target": "status", "rules": rules, "seed": 0}
    got = evaluate_shards(synthetic=shards, engine="local", metrics=METRICS, subsample=3000, **kw)
    every = pd.read_parquet(shards)
    assert len(every) == 9000
    want = evaluate(synthetic=every, metrics=["column_distance", "rule_violations"], **kw)
    g, w = _values(got), _values(want)
    assert g[("column_distance", None)] == pytest.approx(w[("column_distance", None)], abs=1e-12)
    per_g = next(r for r in got["records"] if r["name"] == "column_distance")["details"]
    per_w = next(r for r in want["records"] if r["name"] == "column_distance")["details"]
    assert per_g["per_column"] == pytest.approx(per_w["per_column"], abs=1e-12)
    for key in [k for k in w if k[0] == "rule_violation_rate"]:
        assert g[key] == pytest.approx(w[key], abs=1e-12), key
    assert g[("rule_violation_rate", None)] > 0  # the rules do find something
    # DCR over every row equals the single-process metric when it queries every row
    from healthsynth.evaluate._prepare import prepare
    from healthsynth.evaluate.privacy import dcr

    prep = prepare(real=train, synthetic=every, holdout=holdout, target="status")
    full = {
        r.name: r.value
        for r in dcr.compute(
            real=prep.real,
            synthetic=prep.synthetic,
            holdout=prep.holdout,
            schema=prep.schema,
            max_rows=10**9,
        )
    }
    for name in ("dcr_median_ratio", "exact_copy_rate", "nndr"):
        assert g[(name, None)] == pytest.approx(full[name], abs=1e-12), name
    assert 0.3 < g[("closer_to_train_share", None)] < 0.7
    # who covered which rows
    scale = got["meta"]["scale"]
    assert scale["synthetic_rows"] == 9000 and scale["subsample_rows"] == 3000
    assert scale["blocks"] == 5 and set(scale["subsample_metrics"]) == {"coverage", "duplicates"}
    for r in got["records"]:
        if r["name"].startswith(("coverage", "duplicate")):
            assert r["details"]["synthetic_rows_used"] == 3000
        elif r["name"] in ("column_distance", "tstr_auc", "dcr_median_ratio"):
            assert r["details"]["synthetic_rows_scored"] == 9000
    tstr = next(r for r in got["records"] if r["name"] == "tstr_auc")
    assert tstr["details"]["blocks"] == 5
    lo, hi = tstr["details"]["per_block_min"], tstr["details"]["per_block_max"]
    assert lo <= tstr["value"] <= hi and tstr["reference"] > 0.6
    assert got["meta"]["synthetic"]["rows"] == 9000


def test_the_same_numbers_on_ray_as_in_one_process(ray_cluster, tables):
    train, holdout, shards, rules = tables
    kw = {
        "real": train,
        "holdout": holdout,
        "target": "status",
        "rules": rules,
        "seed": 1,
        "synthetic": shards,
        "metrics": METRICS,
        "subsample": 2000,
        "block_rows": 2000,
    }
    local = evaluate_shards(engine="local", **kw)
    on_ray = evaluate_shards(engine="ray", workers=2, **kw)
    assert _values(on_ray) == _values(local)
    assert on_ray["meta"]["scale"]["engine"] == "ray" and on_ray["meta"]["scale"]["workers"] == 2


def test_a_report_renders_from_the_result(tables, tmp_path):
    from healthsynth.report import write_report

    train, holdout, shards, rules = tables
    result = evaluate_shards(
        real=train,
        synthetic=shards,
        holdout=holdout,
        target="status",
        rules=rules,
        engine="local",
        metrics=METRICS,
        subsample=2000,
    )
    write_report(result, tmp_path / "report")
    html = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "column_distance" in html and "dcr_median_ratio" in html
    scores = json.loads((tmp_path / "report" / "scores.json").read_text(encoding="utf-8"))
    assert scores["meta"]["scale"]["synthetic_rows"] == 9000


def test_bad_input_is_one_sentence(tables, tmp_path):
    train, holdout, shards, _ = tables
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFileError, match="holds no .parquet files"):
        evaluate_shards(real=train, synthetic=empty, engine="local")
    with pytest.raises(DataFileError, match="does not exist"):
        evaluate_shards(real=train, synthetic=tmp_path / "nope.parquet", engine="local")
    with pytest.raises(ParameterError, match="subsample must be a positive whole number"):
        evaluate_shards(real=train, synthetic=shards, engine="local", subsample=0)
    with pytest.raises(ParameterError, match="workers must be a positive whole number"):
        evaluate_shards(real=train, synthetic=shards, engine="ray", workers=0)
    with pytest.raises(ParameterError, match="not known"):
        evaluate_shards(real=train, synthetic=shards, engine="local", metrics=["nope"])


def test_one_parquet_file_or_csv_scores_like_the_shards(tables, tmp_path):
    train, holdout, shards, _ = tables
    every = pd.read_parquet(shards)
    every.to_csv(tmp_path / "all.csv", index=False)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pandas(every), tmp_path / "all.parquet", row_group_size=1500)
    kw = {"real": train, "holdout": holdout, "target": "status", "engine": "local", "seed": 0}
    metrics = ["column_distance", "dcr"]
    base = _values(evaluate_shards(synthetic=shards, metrics=metrics, **kw))
    one = evaluate_shards(
        synthetic=tmp_path / "all.parquet", metrics=metrics, block_rows=3000, **kw
    )
    assert one["meta"]["scale"]["blocks"] == 3  # row groups of 1,500 joined up to 3,000 rows
    csv = evaluate_shards(synthetic=tmp_path / "all.csv", metrics=metrics, **kw)
    for got in (_values(one), _values(csv)):
        for key in (("column_distance", None), ("dcr_median_ratio", None), ("nndr", None)):
            assert got[key] == pytest.approx(base[key], abs=1e-12), key


def test_dcr_on_a_share_of_the_rows(tables):
    train, holdout, shards, _ = tables
    kw = {"real": train, "holdout": holdout, "engine": "local", "metrics": ["dcr"]}
    got = evaluate_shards(synthetic=shards, dcr_rows=3000, **kw)
    rec = next(r for r in got["records"] if r["name"] == "dcr_median_ratio")
    # each block queries its share, rounded: within one row per block of what was asked
    assert abs(rec["details"]["n_synthetic"] - 3000) <= 5
    assert rec["details"]["n_synthetic_total"] == 9000
    assert got["meta"]["scale"]["dcr_rows"] == 3000
    full = _values(evaluate_shards(synthetic=shards, **kw))
    assert _values(got)[("dcr_median_ratio", None)] == pytest.approx(
        full[("dcr_median_ratio", None)], rel=0.1
    )


def test_exact_copies_are_counted_on_every_row_when_distances_are_queried_on_a_share(
    tables, tmp_path
):
    train, holdout, shards, _ = tables
    synthetic = pd.read_parquet(shards)
    # plant 37 copies of training rows (one of them twice) among 9,000 rows, spread over blocks
    planted = pd.concat([train.iloc[:36], train.iloc[[0]]], ignore_index=True)
    at = np.linspace(0, len(synthetic) - 1, len(planted)).astype(int)
    synthetic.iloc[at] = planted[synthetic.columns].to_numpy()
    # a row equal to a training row except one value is no copy
    near = train.iloc[[40]].copy()
    near["bili"] = near["bili"] + 0.1
    synthetic.iloc[[5]] = near[synthetic.columns].to_numpy()
    one = tmp_path / "planted.parquet"
    synthetic.to_parquet(one, row_group_size=2000)
    kw = {"real": train, "holdout": holdout, "engine": "local", "metrics": ["dcr"]}
    got = evaluate_shards(synthetic=one, dcr_rows=500, **kw)
    copy = next(r for r in got["records"] if r["name"] == "exact_copy_rate")
    assert copy["details"]["exact_copies"] == 37
    assert copy["details"]["n_synthetic"] == 9000
    assert copy["value"] == pytest.approx(37 / 9000)
    ratio = next(r for r in got["records"] if r["name"] == "dcr_median_ratio")
    assert abs(ratio["details"]["n_synthetic"] - 500) <= 5
    # the same count from every row's distance to its nearest training row, the slow way
    from healthsynth.evaluate.privacy import dcr

    slow = dcr.compute(
        real=train, synthetic=synthetic, holdout=holdout, schema=infer_schema(train), max_rows=9000
    )
    assert next(r for r in slow if r.name == "exact_copy_rate").value == pytest.approx(37 / 9000)


def test_csv_blocks_are_read_as_read_table_reads_the_file(tmp_path):
    # survival/jasa's dates written as ISO text, in a semicolon file: the blocks of a scaled
    # evaluation must hold the dates and numbers the real table holds
    from healthsynth.data import read_table
    from healthsynth.scale._units import _read_unit, _units
    from tests.helpers import real

    df = real("survival/jasa")[["birth.dt", "accept.dt", "futime", "fustat"]]
    path = tmp_path / "syn.csv"
    df.to_csv(path, sep=";", index=False, date_format="%Y-%m-%d")
    (unit,) = _units([path], block_rows=10_000)
    block = _read_unit(unit)
    pd.testing.assert_frame_equal(block, read_table(path))
    assert str(block["accept.dt"].dtype).startswith("datetime64")
