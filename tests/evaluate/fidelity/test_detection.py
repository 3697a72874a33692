from __future__ import annotations

import numpy as np

from healthsynth.data import infer_schema, train_holdout_split
from healthsynth.evaluate.fidelity.detection import compute
from tests.helpers import real


def test_holdout_is_undetectable_and_shuffled_is_detected():
    df = real("survival/colon")
    schema = infer_schema(df)
    train, hold = train_holdout_split(df, holdout=0.5, seed=0)
    (rec,) = compute(real=train, synthetic=hold, holdout=hold, schema=schema)
    assert abs(rec.value - 0.5) < 0.08 and rec.interval[0] < rec.value < rec.interval[1]
    rng = np.random.default_rng(1)
    fake = hold.apply(lambda s: s.sample(frac=1, random_state=int(rng.integers(1e6))).to_numpy())
    (bad,) = compute(real=train, synthetic=fake, schema=schema)
    assert bad.value > 0.75
