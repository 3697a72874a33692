from __future__ import annotations

import numpy as np
import pytest

from healthsynth.data import infer_schema
from healthsynth.errors import ConditionError
from healthsynth.generators._conditions import parse_condition_strings, resolve_conditions
from healthsynth.generators.tabular_lm._codec import TableCodec
from tests.helpers import real


@pytest.fixture(scope="module")
def nafld():
    df = real("survival/nafld1", 4000)
    schema = infer_schema(df)
    return df, schema, TableCodec.fit(schema, df)


def test_modes_and_vocabulary_layout(nafld):
    df, schema, codec = nafld
    modes = {n: cc.mode for n, cc in codec.codecs.items()}
    assert modes["male"] == "cat" and modes["age"] == "discrete"
    assert modes["weight"] == modes["bmi"] == modes["futime"] == "continuous"
    assert "id" not in codec.codecs and "case.id" not in codec.codecs
    # slot blocks are contiguous and disjoint
    ends = codec.offset + np.asarray(codec.slot_size)
    assert np.all(codec.offset[1:] == ends[:-1]) and ends[-1] == codec.vocab_size


def test_round_trip_is_exact_for_discrete_and_close_for_continuous(nafld):
    df, schema, codec = nafld
    rng = np.random.default_rng(0)
    tokens = codec.encode(df, rng)
    back = codec.decode(tokens, rng)
    for col in ("age", "male", "status"):
        assert (back[col].to_numpy() == df[col].to_numpy()).all()
    for col in ("weight", "height", "bmi", "futime"):
        assert (back[col].isna() == df[col].isna()).all()
        ok = df[col].notna()
        # a continuous value comes back inside its fine interval: far below the column spread
        err = np.abs(back[col][ok].to_numpy(float) - df[col][ok].to_numpy(float))
        assert np.median(err) < 0.01 * df[col].std()
    schema.validate(back.assign(id=df["id"], **{"case.id": df["case.id"]}))


def test_decoded_values_keep_range_and_precision(nafld):
    df, schema, codec = nafld
    rng = np.random.default_rng(1)
    random_tokens = np.stack([rng.integers(0, size, 5000) for size in codec.slot_size], axis=1)
    # fine tokens of a missing coarse token must be 0, as the decoder enforces while sampling
    for slots in codec.column_slots:
        if len(slots) == 2:
            na = codec.slot_size[slots[0]] - 1
            random_tokens[random_tokens[:, slots[0]] == na, slots[1]] = 0
    out = codec.decode(random_tokens, rng)
    w = out["weight"].dropna()
    assert w.min() >= df.weight.min() and w.max() <= df.weight.max()
    assert np.allclose(w * 10, np.round(w * 10))
    assert out["futime"].dtype == np.int64


def test_point_mass_survives():
    df = real("MASS/Pima.tr")
    df["dose"] = np.where(np.arange(len(df)) % 3 == 0, 0.0, df["bmi"])  # a third exactly 0
    schema = infer_schema(df)
    codec = TableCodec.fit(schema, df, max_discrete=5)
    assert codec.codecs["dose"].mode == "continuous"
    rng = np.random.default_rng(0)
    back = codec.decode(codec.encode(df, rng), rng)
    assert (back["dose"] == 0).mean() == pytest.approx((df["dose"] == 0).mean(), abs=0.01)


def test_condition_parsing_and_errors(nafld):
    df, schema, codec = nafld
    parsed = parse_condition_strings(["male=1", "age>=60", "bmi=20..30"])
    assert parsed == {"male": "1", "age": ">=60", "bmi": "20..30"}
    conds = resolve_conditions(parsed, schema)
    assert conds["male"].values == (1,)
    assert conds["age"].low == 60 and conds["age"].high == np.inf
    assert (conds["bmi"].low, conds["bmi"].high) == (20, 30)
    with pytest.raises(ConditionError, match="'sex' is not in the data; valid columns: age, male"):
        resolve_conditions({"sex": "female"}, schema)
    with pytest.raises(
        ConditionError, match=r"value '2' never occurs in column 'male'; valid values: 0, 1"
    ):
        resolve_conditions({"male": "2"}, schema)
    with pytest.raises(ConditionError, match="identifier column"):
        resolve_conditions({"id": 3}, schema)
    with pytest.raises(ConditionError, match="COLUMN=VALUE"):
        parse_condition_strings(["age"])
    with pytest.raises(ConditionError, match="outside the range"):
        codec.slot_masks(resolve_conditions({"weight": ">=1000"}, schema))
