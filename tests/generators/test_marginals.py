"""The independent-marginals floor: exact marginals, no relations between columns."""

from __future__ import annotations

import pytest

from healthsynth.data import infer_schema, train_holdout_split
from healthsynth.errors import ConditionError
from healthsynth.evaluate import evaluate
from healthsynth.generators import registry
from tests.helpers import real


@pytest.fixture(scope="module")
def colon():
    df = real("survival/colon").drop(columns="id")
    schema = infer_schema(df, target="status")
    train, hold = train_holdout_split(df, holdout=0.3, seed=0)
    return train, hold, schema, registry.create("marginals").fit(train, schema=schema)


def test_marginals_are_kept_and_relations_are_lost(colon):
    train, hold, schema, gen = colon
    syn = gen.sample(20_000, seed=0)
    res = evaluate(
        real=train, synthetic=syn, holdout=hold, schema=schema,
        metrics=["column_distance", "dependence_difference"],
    )  # fmt: skip
    by = {r["name"]: r for r in res["records"]}
    # marginals: closer to the training rows than the (finite) holdout is
    assert by["column_distance"]["value"] < by["column_distance"]["reference"]
    # relations: colon's strong pairs (etype~time, nodes~node4) are gone
    assert by["dependence_difference"]["value"] > 2 * by["dependence_difference"]["reference"]
    assert abs(syn["nodes"].isna().mean() - train["nodes"].isna().mean()) < 0.01


def test_conditions_fix_one_column_and_leave_the_others(colon):
    train, _, _, gen = colon
    syn = gen.sample(5000, seed=1, conditions={"sex": 1, "age": ">=60"})
    assert (syn["sex"] == 1).all() and (syn["age"] >= 60).all()
    # independence: status keeps its overall share whatever the condition
    assert abs(syn["status"].mean() - train["status"].mean()) < 0.03
    with pytest.raises(ConditionError, match="age"):
        gen.sample(5, conditions={"age": ">=200"})


def test_identifiers_run_on_across_the_blocks_of_a_file(tmp_path):
    """Each block of a file continues the surrogate identifiers of the ones before it."""
    import pandas as pd

    from healthsynth.data import infer_schema
    from healthsynth.generators.marginals import IndependentMarginals
    from tests.helpers import real

    df = real("survival/colon", 200)
    gen = IndependentMarginals().fit(df, schema=infer_schema(df, identifiers=["id"]))
    gen.sample_to_file(25, tmp_path / "s.csv", seed=0, block_size=10)
    out = pd.read_csv(tmp_path / "s.csv")
    assert list(out["id"]) == list(range(1, 26))
