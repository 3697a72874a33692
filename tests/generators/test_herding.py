"""Kernel herding of sampled rows (healthsynth.generators._herding) and tabular-lm's use of it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from healthsynth.data import infer_schema
from healthsynth.errors import ParameterError
from healthsynth.generators._herding import HERD_MAX_ROWS, HERD_POOL, herd, pool_factor
from healthsynth.generators.tabular_lm import TabularLM
from tests.helpers import real

TINY = {"n_embd": 32, "n_layer": 1, "n_head": 2, "privacy_stop": False, "epochs": 3}


@pytest.fixture(scope="module")
def pbc():
    df = real("survival/pbc").drop(columns=["id"])
    return df, infer_schema(df, target="status")


def _gap(rows: pd.DataFrame, pool: pd.DataFrame) -> float:
    """How far a subset's column summaries are from the pool's (numbers in pool sds)."""
    gap = 0.0
    for c in pool.columns:
        if pd.api.types.is_numeric_dtype(pool[c]) and pool[c].nunique() > 5:
            sd = pool[c].std() or 1.0
            gap += abs(rows[c].mean() - pool[c].mean()) / sd
            gap += abs(rows[c].isna().mean() - pool[c].isna().mean())
        else:
            a = rows[c].astype(str).value_counts(normalize=True)
            b = pool[c].astype(str).value_counts(normalize=True)
            gap += a.sub(b, fill_value=0).abs().sum() / 2
    return gap


def test_herded_rows_follow_the_pool_more_closely_than_random_rows(pbc):
    # pbc's 418 real patients as the pool: 25 herded rows against 200 random sets of 25
    df, schema = pbc
    chosen = herd(df, 25, schema)
    assert len(chosen) == 25 and len(set(chosen.tolist())) == 25
    assert chosen.min() >= 0 and chosen.max() < len(df)
    rng = np.random.default_rng(0)
    random_gaps = [_gap(df.iloc[rng.choice(len(df), 25, replace=False)], df) for _ in range(200)]
    herded_gap = _gap(df.iloc[chosen], df)
    # typically below every random set; required: better than nine in ten of them
    assert herded_gap < np.quantile(random_gaps, 0.1), (herded_gap, np.median(random_gaps))
    assert (herd(df, 25, schema) == chosen).all()  # no randomness of its own


def test_herding_works_part_by_part_and_keeps_every_row_when_asked_for_all(pbc):
    df, schema = pbc
    chosen = herd(df, 40, schema, block=10)  # four parts of about 104 pool rows each
    assert len(chosen) == 40 and len(set(chosen.tolist())) == 40
    parts = np.linspace(0, len(df), 5).round().astype(int)
    per_part = np.histogram(chosen, bins=parts)[0]
    assert per_part.tolist() == [10, 10, 10, 10]
    assert herd(df, len(df), schema).tolist() == list(range(len(df)))
    assert herd(df, 0, schema).tolist() == []


def test_auto_herds_small_requests_only():
    assert pool_factor("auto", 10) == HERD_POOL
    assert pool_factor("auto", HERD_MAX_ROWS) == HERD_POOL
    assert pool_factor("auto", HERD_MAX_ROWS + 1) == 1
    assert pool_factor(1, 10) == 1 and pool_factor(5, 10**6) == 5


def test_tabular_lm_herds_its_rows_and_keeps_conditions_and_seeds(pbc):
    df, schema = pbc
    gen = TabularLM(**TINY, herding=10, seed=0).fit(df, schema=schema)
    a = gen.sample(30, seed=4)
    assert len(a) == 30
    pd.testing.assert_frame_equal(a, gen.sample(30, seed=4))
    cond = gen.sample(20, seed=4, conditions={"sex": "f"})
    assert len(cond) == 20 and (cond["sex"] == "f").all()
    gen.herding = 1
    assert not gen.sample(30, seed=4).equals(a)
    # the herded rows are rows of the pool that the same seed draws: 10 × 30 of them
    pool = gen.sample(300, seed=4).drop_duplicates()
    merged = a.merge(pool, on=list(df.columns), how="left", indicator=True)
    assert (merged["_merge"] == "both").all()


@pytest.mark.parametrize("bad", [0, -2, "yes", True, 2.5])
def test_a_bad_herding_setting_is_one_sentence(pbc, bad):
    df, schema = pbc
    with pytest.raises(ParameterError, match="herding"):
        TabularLM(**TINY, herding=bad).fit(df.iloc[:60], schema=schema)


def test_a_large_pool_is_herded_in_parts_of_bounded_size(pbc, monkeypatch):
    from healthsynth.generators import _herding

    df, schema = pbc
    pool = df.iloc[:400]
    # a pool of 40 × n with parts of at most 100 rows: 2 rows kept per part, five parts of 80
    monkeypatch.setattr(_herding, "MAX_PART", 100)
    chosen = _herding.herd(pool, 10, schema)
    assert len(set(chosen.tolist())) == 10
    assert np.histogram(chosen, bins=np.arange(0, 401, 80))[0].tolist() == [2, 2, 2, 2, 2]
