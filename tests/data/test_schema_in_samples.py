"""What a schema's precision and date resolution make of a fitted generator's samples.

The schema is inferred from real files here, as ``healthsynth fit`` does; the generator is a
tiny tabular-lm, which rounds what it draws to each column's precision or resolution.
"""

from __future__ import annotations

import pandas as pd
import pytest

from healthsynth.data import infer_schema, read_table, write_table
from healthsynth.data._column import beyond_decimals
from healthsynth.generators.tabular_lm import TabularLM
from tests.helpers import real

TINY = {"n_embd": 32, "n_layer": 1, "n_head": 2, "epochs": 2, "privacy_stop": False}
JASA_DATES = ["birth.dt", "accept.dt", "tx.date", "fu.date"]


@pytest.fixture(scope="module")
def jasa_fit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("jasa")
    df = real("survival/jasa")
    df["seen"] = pd.to_datetime(df["accept.dt"]) + pd.to_timedelta(df["futime"] * 61, unit="s")
    df.to_csv(folder / "jasa.csv", index=False)  # dates as ISO text, as R and pandas write them
    train = read_table(folder / "jasa.csv")
    schema = infer_schema(train)
    gen = TabularLM(seed=0, **TINY).fit(train, schema=schema)
    return folder, train, gen


def test_sampled_dates_keep_the_real_resolution(jasa_fit):
    folder, train, gen = jasa_fit
    assert [gen.schema_[c].resolution for c in JASA_DATES] == ["day"] * 4
    assert gen.schema_["seen"].resolution == "second"
    out = gen.sample(300, seed=1)
    for c in JASA_DATES:
        t = out[c].dropna()
        assert pd.api.types.is_datetime64_any_dtype(out[c]) and len(t) > 100
        assert (t == t.dt.normalize()).all(), f"{c} has times of day"
        assert t.min() >= train[c].min() and t.max() <= train[c].max()
    seen = out["seen"].dropna()
    assert ((seen.dt.microsecond == 0) & (seen.dt.nanosecond == 0)).all()
    assert (seen != seen.dt.normalize()).mean() > 0.9  # seconds are kept, not cut to days
    # a synthetic CSV reads back as the same dates, as the real one did
    write_table(out, folder / "syn.csv")
    back = read_table(folder / "syn.csv")
    for c in [*JASA_DATES, "seen"]:
        pd.testing.assert_series_equal(back[c], out[c], check_dtype=False)
    text = (folder / "syn.csv").read_text(encoding="utf-8").splitlines()[1]
    assert text.split(",")[0].count("-") == 2 and "syn-" not in text


def test_a_saved_model_keeps_the_resolution(jasa_fit, tmp_path):
    _, _, gen = jasa_fit
    gen.save(tmp_path / "model")
    loaded = TabularLM.load(tmp_path / "model")
    assert loaded.schema_["birth.dt"].resolution == "day"
    pd.testing.assert_frame_equal(loaded.sample(50, seed=3), gen.sample(50, seed=3))


def test_flchain_samples_carry_the_decimals_of_nearly_all_real_values(tmp_path):
    df = real("survival/flchain")
    df.to_csv(tmp_path / "flchain.csv", index=False)
    train = read_table(tmp_path / "flchain.csv").sample(1500, random_state=0)
    # the real file has one kappa with 4 decimals and a lambda with 14; the subset keeps them
    odd = (df["kappa"] == 0.9732) | (df["lambda"] == 0.92248062015503)
    train = pd.concat([train, read_table(tmp_path / "flchain.csv")[odd.to_numpy()]])
    schema = infer_schema(train)
    assert (schema["kappa"].precision, schema["lambda"].precision) == (3, 3)
    out = TabularLM(seed=0, **TINY).fit(train, schema=schema).sample(600, seed=2)
    for c in ("kappa", "lambda"):
        x = out[c].dropna().to_numpy(float)
        assert len(x) > 500 and not beyond_decimals(x, 3).any(), f"{c} has more than 3 decimals"
        assert beyond_decimals(x, 2).any()  # and a third decimal where the real data has one
    schema.validate(out)
