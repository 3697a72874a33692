"""CLLM-style curation: a classifier fit on real rows drops the synthetic rows it contradicts.

Every "synthetic" table here is held-out real rows, sometimes corrupted on purpose (labels flipped,
a category or label that does not exist injected) so the right verdict is known.
"""

from __future__ import annotations

import inspect
import json

import numpy as np
import pandas as pd
import pytest

from healthsynth.data import infer_schema
from healthsynth.errors import ParameterError
from healthsynth.generators._curate import (
    DEFAULT_CONFIDENCE_THRESHOLD,
    DEFAULT_UNCERTAINTY_PERCENTILE,
    GROUPS,
    MIN_ROWS_PER_CLASS,
    Curation,
    _label_probabilities,
    curate,
)
from tests.helpers import real


def _split(df: pd.DataFrame, n_real: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = np.random.default_rng(seed).permutation(len(df))
    a, b = df.iloc[order[:n_real]], df.iloc[order[n_real:]]
    return a.reset_index(drop=True), b.reset_index(drop=True)


def _flip(df: pd.DataFrame, target: str, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Give a seeded half of the rows another label (the next class, cyclically)."""
    rng = np.random.default_rng(seed)
    flipped = np.zeros(len(df), dtype=bool)
    flipped[rng.choice(len(df), len(df) // 2, replace=False)] = True
    classes = sorted(df[target].unique())
    nxt = {c: classes[(i + 1) % len(classes)] for i, c in enumerate(classes)}
    out = df.copy()
    out.loc[flipped, target] = out.loc[flipped, target].map(nxt)
    return out, flipped


@pytest.fixture(scope="module")
def pima():
    df = real("MASS/Pima.tr")
    return df, infer_schema(df, target="type")


@pytest.fixture(scope="module")
def colon():
    df = real("survival/colon", 300)
    return df, infer_schema(df, target="status")


def _assert_skipped(cur: Curation, n: int, *words: str) -> None:
    assert cur.skipped is not None
    for word in words:
        assert word in cur.skipped, cur.skipped
    assert cur.keep.dtype == bool and cur.keep.all() and len(cur.keep) == n
    assert (cur.group == "unchecked").all()
    assert np.isnan(cur.confidence).all() and np.isnan(cur.aleatoric).all()
    assert cur.counts() == {"easy": 0, "ambiguous": 0, "hard": 0, "unchecked": n}
    json.dumps(cur.to_record())


# -- the method ------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_flipped_labels_are_dropped_far_more_often_than_true_ones(pima, seed):
    df, schema = pima
    train, rest = _split(df, 100, seed)
    synthetic, flipped = _flip(rest, "type", seed)
    cur = curate(real=train, synthetic=synthetic, schema=schema, seed=seed)
    assert cur.skipped is None
    hard = cur.group == "hard"
    assert np.array_equal(cur.keep, ~hard)
    hard_flipped, hard_true = hard[flipped].mean(), hard[~flipped].mean()
    assert hard_flipped > 0.3
    assert hard_flipped > 3 * hard_true
    assert cur.keep[~flipped].mean() >= 0.85
    assert cur.confidence[~flipped].mean() > cur.confidence[flipped].mean() + 0.2
    # the hard rows are the ones confidently contradicted, with low aleatoric uncertainty
    assert (cur.confidence[hard] <= DEFAULT_CONFIDENCE_THRESHOLD).all()
    assert (cur.aleatoric[hard] <= cur.aleatoric_threshold).all()
    assert (cur.confidence[cur.group == "easy"] >= 1 - DEFAULT_CONFIDENCE_THRESHOLD).all()


def test_multiclass_target_flips_are_dropped():
    df = real("datasets/iris")
    schema = infer_schema(df, target="Species")
    train, rest = _split(df, 60, 0)
    synthetic, flipped = _flip(rest, "Species", 0)
    cur = curate(real=train, synthetic=synthetic, schema=schema)
    assert cur.skipped is None
    hard = cur.group == "hard"
    assert hard[flipped].mean() > 0.6
    assert hard[~flipped].mean() < 0.1


def test_stricter_thresholds_drop_fewer_rows(pima):
    df, schema = pima
    train, rest = _split(df, 100, 0)
    synthetic, _ = _flip(rest, "type", 0)
    default = curate(real=train, synthetic=synthetic, schema=schema)
    strict = curate(
        real=train,
        synthetic=synthetic,
        schema=schema,
        confidence_threshold=0.05,
        uncertainty_percentile=20,
    )
    assert strict.counts()["hard"] < default.counts()["hard"]
    # every row the strict rule drops, the default rule drops too
    assert not (~strict.keep & default.keep).any()
    # with the percentile at 100 only confidence decides
    loose = curate(real=train, synthetic=synthetic, schema=schema, uncertainty_percentile=100)
    assert np.array_equal(loose.group == "hard", loose.confidence <= DEFAULT_CONFIDENCE_THRESHOLD)


def test_defaults_are_cllm_and_data_iq():
    params = inspect.signature(curate).parameters
    assert params["confidence_threshold"].default == DEFAULT_CONFIDENCE_THRESHOLD == 0.2
    assert params["uncertainty_percentile"].default == DEFAULT_UNCERTAINTY_PERCENTILE == 50
    assert params["max_iter"].default == 100
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())


def test_every_boosting_iteration_is_used_even_on_tiny_data(pima):
    df, _ = pima
    x = df.drop(columns="type").to_numpy(float)
    y = (df["type"] == "Yes").to_numpy(float)
    probs = _label_probabilities(
        x[:12], y[:12], x[12:40], y[12:40], np.zeros(x.shape[1], bool), seed=0, max_iter=37
    )
    assert probs.shape == (28, 37)
    assert ((probs >= 0) & (probs <= 1)).all()


# -- contract ------------------------------------------------------------------------------------
def test_same_seed_same_verdict_and_counts_add_up(pima):
    df, schema = pima
    train, rest = _split(df, 100, 2)
    synthetic, _ = _flip(rest, "type", 2)
    a = curate(real=train, synthetic=synthetic, schema=schema, seed=7)
    b = curate(real=train, synthetic=synthetic, schema=schema, seed=7)
    assert np.array_equal(a.keep, b.keep) and np.array_equal(a.group, b.group)
    np.testing.assert_array_equal(a.confidence, b.confidence)
    np.testing.assert_array_equal(a.aleatoric, b.aleatoric)
    counts = a.counts()
    assert list(counts) == list(GROUPS) and sum(counts.values()) == len(synthetic)
    assert a.group.dtype == object and set(a.group) <= set(GROUPS)
    record = json.loads(json.dumps(a.to_record()))
    assert record["kept"] + record["dropped"] == len(synthetic)
    assert record["dropped"] == counts["hard"] > 0
    assert record["skipped"] is None and record["target"] == "type"
    assert record["confidence_threshold"] == 0.2 and record["uncertainty_percentile"] == 50
    assert 0 < record["aleatoric_threshold"] <= 0.25


def test_empty_synthetic_gives_an_empty_curation(pima):
    df, schema = pima
    cur = curate(real=df, synthetic=df.iloc[:0], schema=schema)
    assert len(cur.keep) == len(cur.group) == len(cur.confidence) == 0
    assert cur.counts() == dict.fromkeys(GROUPS, 0)
    record = json.loads(json.dumps(cur.to_record()))
    assert record["kept"] == record["dropped"] == 0


# -- when curation does not apply -----------------------------------------------------------------
def test_skipped_without_a_target(pima):
    df, _ = pima
    cur = curate(real=df, synthetic=df, schema=infer_schema(df))
    _assert_skipped(cur, len(df), "no target")


def test_skipped_for_a_numeric_target(pima, colon):
    df, schema = pima
    _assert_skipped(
        curate(real=df, synthetic=df, schema=schema, target="bmi"), len(df), "bmi", "regression"
    )
    cdf = colon[0]
    time_schema = infer_schema(cdf, target="time")
    assert time_schema["time"].kind == "integer"
    _assert_skipped(curate(real=cdf, synthetic=cdf, schema=time_schema), len(cdf), "regression")


def test_skipped_when_the_real_rows_hold_one_class(pima):
    df, schema = pima
    no = df[df["type"] == "No"].reset_index(drop=True)
    _assert_skipped(curate(real=no, synthetic=df, schema=schema), len(df), "only the class 'No'")


def test_skipped_when_a_class_has_too_few_real_rows(pima):
    df, schema = pima
    few = pd.concat([df[df["type"] == "No"], df[df["type"] == "Yes"].head(MIN_ROWS_PER_CLASS - 1)])
    cur = curate(real=few, synthetic=df, schema=schema)
    _assert_skipped(cur, len(df), "'Yes'", f"at least {MIN_ROWS_PER_CLASS}")
    enough = pd.concat([df[df["type"] == "No"], df[df["type"] == "Yes"].head(MIN_ROWS_PER_CLASS)])
    assert curate(real=enough, synthetic=df, schema=schema).skipped is None


# -- awkward rows --------------------------------------------------------------------------------
def test_a_label_the_real_rows_never_show_is_hard(pima):
    df, schema = pima
    train, synthetic = _split(df, 100, 3)
    synthetic.loc[[0, 5, 9], "type"] = "Maybe"
    synthetic.loc[[1], "type"] = None
    cur = curate(real=train, synthetic=synthetic, schema=schema)
    assert list(cur.group[[0, 5, 9]]) == ["hard"] * 3
    assert not cur.keep[[0, 5, 9]].any()
    assert (cur.confidence[[0, 5, 9]] == 0).all()
    # a row without a label cannot be judged: kept, unchecked
    assert cur.group[1] == "unchecked" and cur.keep[1] and np.isnan(cur.confidence[1])
    assert cur.counts()["unchecked"] == 1


def test_missing_values_unseen_categories_and_identifiers(colon):
    df, schema = colon
    assert schema["id"].kind == "identifier" and schema["rx"].kind == "categorical"
    train, synthetic = _split(df, 150, 4)
    # colon's own missing values reach the classifier on both sides
    assert train[["nodes", "differ"]].isna().any().any()
    assert synthetic[["nodes", "differ"]].isna().any().any()
    base = curate(real=train, synthetic=synthetic, schema=schema)
    assert base.skipped is None and np.isfinite(base.confidence).all()

    corrupted = synthetic.copy()
    corrupted.loc[:19, "rx"] = "Placebo-X"  # a treatment arm that does not exist
    cur = curate(real=train, synthetic=corrupted, schema=schema)
    assert cur.skipped is None and np.isfinite(cur.confidence[:20]).all()
    assert sum(cur.counts().values()) == len(corrupted)

    # the identifier column is not a feature: scrambling it changes nothing
    scrambled = synthetic.copy()
    scrambled["id"] = scrambled["id"].to_numpy()[::-1] + 10_000
    same = curate(real=train, synthetic=scrambled, schema=schema)
    np.testing.assert_array_equal(same.confidence, base.confidence)


def test_dates_are_used_as_days(colon):
    df, schema = colon
    # colon's follow-up time in days, written as the date it ended (a real-data transformation)
    dated = df.copy()
    dated["time"] = pd.Timestamp("1980-01-01") + pd.to_timedelta(df["time"], unit="D")
    dated_schema = infer_schema(dated, target="status")
    assert dated_schema["time"].kind == "datetime"
    base = curate(real=df.iloc[:150], synthetic=df.iloc[150:], schema=schema)
    # an LLM writes dates as text; trees only see the order, so the verdict is the same
    synthetic = dated.iloc[150:].copy()
    synthetic["time"] = synthetic["time"].dt.strftime("%Y-%m-%d")
    cur = curate(real=dated.iloc[:150], synthetic=synthetic, schema=dated_schema)
    np.testing.assert_allclose(cur.confidence, base.confidence)
    assert np.array_equal(cur.group, base.group)


# -- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("confidence_threshold", 0),
        ("confidence_threshold", 0.6),
        ("confidence_threshold", -0.1),
        ("confidence_threshold", float("nan")),
        ("confidence_threshold", True),
        ("uncertainty_percentile", 0),
        ("uncertainty_percentile", 101),
        ("uncertainty_percentile", "50"),
        ("max_iter", 0),
        ("max_iter", 2.5),
        ("seed", -1),
        ("target", "nope"),
    ],
)
def test_bad_parameters_name_themselves(pima, setting, value):
    df, schema = pima
    with pytest.raises(ParameterError, match=setting) as info:
        curate(real=df, synthetic=df, schema=schema, **{setting: value})
    assert repr(value) in str(info.value)


def test_the_prompted_llm_path_re_exports_the_shared_curation():
    from healthsynth.generators import _curate
    from healthsynth.generators.prompted_llm import _curate as old

    assert old.curate is _curate.curate and old.Curation is _curate.Curation
