from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import pairwise_distances

from healthsynth.data import infer_schema, train_holdout_split
from healthsynth.data._distance import RowEncoder
from healthsynth.evaluate.privacy.dcr import compute
from tests.evaluate.privacy._data import awkward, three_way
from tests.helpers import real


def test_copies_are_flagged_and_fresh_data_is_not():
    df = real("survival/nafld1", 4000)
    schema = infer_schema(df)
    train, hold = train_holdout_split(df, holdout=0.25, seed=0)
    recs = {
        r.name: r
        for r in compute(real=train, synthetic=train.iloc[:800], holdout=hold, schema=schema)
    }
    assert recs["exact_copy_rate"].value == 1.0
    assert recs["dcr_median_ratio"].value == 0.0
    assert recs["nndr"].value == 0.0
    assert recs["nndr"].reference > 0.5
    # training rows are subsampled to the holdout's size (1,000 of 3,000), so a copy is "closer to
    # train" for sure only when its source row is drawn: expected 1/3 * 1 + 2/3 * 1/2 = 2/3
    assert recs["closer_to_train_share"].value > 0.6
    fresh = {r.name: r for r in compute(real=train, synthetic=hold, holdout=hold, schema=schema)}
    assert 0.9 < fresh["dcr_median_ratio"].value < 1.1
    assert fresh["exact_copy_rate"].value == fresh["exact_copy_rate"].reference
    assert fresh["nndr"].value == pytest.approx(fresh["nndr"].reference)


def test_disjoint_real_sample_scores_like_the_holdout():
    train, hold, third = three_way("causaldata/nhefs", drop=("seqn",))
    schema = infer_schema(train)
    recs = {r.name: r for r in compute(real=train, synthetic=third, holdout=hold, schema=schema)}
    ratio = recs["dcr_median_ratio"]
    assert 0.9 < ratio.value < 1.1
    assert ratio.interval[0] < 1.0 < ratio.interval[1]
    # which 543 rows happen to form each reference set moves the share by a few hundredths
    # (seeds 0-5 of this split give 0.42-0.52), so the tolerance is 0.1
    assert abs(recs["closer_to_train_share"].value - 0.5) < 0.1
    assert abs(recs["nndr"].value - recs["nndr"].reference) < 0.05


def test_histogram_has_common_edges_and_shares_summing_to_one():
    train, hold, third = three_way("survival/pbc")
    schema = infer_schema(train)
    rec = compute(real=train, synthetic=third, holdout=hold, schema=schema)[0]
    hist = rec.details["histogram"]
    assert len(hist["edges"]) == 31
    assert np.all(np.diff(hist["edges"]) > 0)
    for key in ("synthetic", "holdout"):
        assert len(hist[key]) == 30
        assert sum(hist[key]) == pytest.approx(1.0)


def test_values_agree_with_brute_force_pairwise_distances():
    """Cross-check the k-d tree search against scikit-learn's full distance matrix."""
    train, hold, third = three_way("survival/pbc", seed=3)
    schema = infer_schema(train)
    recs = {r.name: r for r in compute(real=train, synthetic=third, holdout=hold, schema=schema)}
    enc = RowEncoder(schema).fit(train)
    rx, sx, hx = (enc.transform(d) for d in (train, third, hold))
    d_syn = np.sort(pairwise_distances(sx, rx, metric="manhattan"), axis=1)
    d_hold = np.sort(pairwise_distances(hx, rx, metric="manhattan"), axis=1)
    details = recs["dcr_median_ratio"].details
    assert abs(details["median_dcr_synthetic"] - np.median(d_syn[:, 0])) < 1e-9
    assert abs(details["median_dcr_holdout"] - np.median(d_hold[:, 0])) < 1e-9
    expected = np.median(d_syn[:, 0]) / np.median(d_hold[:, 0])
    assert abs(recs["dcr_median_ratio"].value - expected) < 1e-9
    assert abs(recs["nndr"].value - np.median(d_syn[:, 0] / d_syn[:, 1])) < 1e-9
    assert abs(recs["nndr"].reference - np.median(d_hold[:, 0] / d_hold[:, 1])) < 1e-9
    assert recs["exact_copy_rate"].value == np.mean(d_syn[:, 0] == 0)


def test_without_holdout_only_the_median_is_reported():
    train, _, third = three_way("survival/pbc")
    recs = compute(real=train, synthetic=third, schema=infer_schema(train))
    assert [r.name for r in recs] == ["dcr_median"]
    assert recs[0].value > 0
    assert "holdout" in recs[0].message


def test_missing_values_datetimes_and_a_single_synthetic_row():
    train, hold, third = three_way("survival/pbc")
    train, schema = awkward(train, infer_schema(train))
    hold, _ = awkward(hold, schema)
    third, _ = awkward(third, schema)
    assert train["chol"].isna().any() and train["never_measured"].isna().all()
    recs = compute(real=train, synthetic=third.iloc[:1], holdout=hold, schema=schema)
    assert all(r.status == "ok" for r in recs)
    assert all(np.isfinite(r.value) for r in recs)
    # a synthetic table with missing values where the training rows had none still encodes
    no_na = train.dropna(subset=["chol"])
    recs = compute(real=no_na, synthetic=third, holdout=hold, schema=schema)
    assert all(r.status == "ok" for r in recs)
