from __future__ import annotations

import numpy as np
import pytest

from healthsynth.data import infer_schema
from healthsynth.evaluate.fidelity.column_distance import column_distances, compute
from tests.helpers import real


@pytest.fixture(scope="module")
def colon():
    df = real("survival/colon")
    return df, infer_schema(df)


def test_known_answers(colon):
    df, schema = colon
    assert all(v == 0 for v in column_distances(df, df, schema).values())
    shifted = df.assign(age=df["age"] + 1000, sex=1 - df["sex"])
    d = column_distances(df, shifted, schema)
    assert d["age"] == 1.0  # disjoint supports: KS = 1
    # sex flipped: TV = |p - (1 - p)|
    p = df["sex"].mean()
    assert d["sex"] == pytest.approx(abs(p - (1 - p)))
    missing = df.assign(nodes=np.nan)
    assert column_distances(df, missing, schema)["nodes"] == 1.0


def test_record_has_holdout_reference(colon):
    df, schema = colon
    a, b = df.iloc[::2], df.iloc[1::2]
    (rec,) = compute(real=a, synthetic=a.sample(frac=1, random_state=0), holdout=b, schema=schema)
    assert rec.value == 0.0 and 0 < rec.reference < 0.1 and rec.direction == "lower"
