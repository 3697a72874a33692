from __future__ import annotations

import numpy as np

from healthsynth.data import infer_schema
from healthsynth.evaluate.fidelity.dependence import association_matrix, compute
from tests.helpers import real


def test_known_associations():
    df = real("survival/nafld1", 3000)
    schema = infer_schema(df)
    m = association_matrix(df, schema)
    assert m[("weight", "bmi")] > 0.8  # BMI is computed from weight
    assert 0 <= min(m.values()) and max(m.values()) <= 1
    # breaking every relation (independent shuffles) is detected
    rng = np.random.default_rng(0)
    shuffled = df.apply(lambda s: s.sample(frac=1, random_state=int(rng.integers(1e6))).to_numpy())
    (same,) = compute(real=df, synthetic=df, schema=schema)
    (broken,) = compute(real=df, synthetic=shuffled, schema=schema)
    assert same.value == 0 and broken.value > 0.1
    assert "weight~bmi" in broken.details["largest_gaps"]
