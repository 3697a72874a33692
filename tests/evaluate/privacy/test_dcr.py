from __future__ import annotations

from healthsynth.data import infer_schema, train_holdout_split
from healthsynth.evaluate.privacy.dcr import compute
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
    # training rows are subsampled to the holdout's size (1,000 of 3,000), so a copy is "closer to
    # train" for sure only when its source row is drawn: expected 1/3 * 1 + 2/3 * 1/2 = 2/3
    assert recs["closer_to_train_share"].value > 0.6
    fresh = {r.name: r for r in compute(real=train, synthetic=hold, holdout=hold, schema=schema)}
    assert 0.9 < fresh["dcr_median_ratio"].value < 1.1
    assert fresh["exact_copy_rate"].value == fresh["exact_copy_rate"].reference
