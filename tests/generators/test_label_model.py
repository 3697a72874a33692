"""The label model: a logistic regression's p(target | row), and tabular-lm's opt-in use of it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from healthsynth.data import infer_schema
from healthsynth.errors import ParameterError
from healthsynth.generators._label_model import LabelModel, _design
from healthsynth.generators.tabular_lm import TabularLM
from tests.helpers import real

TINY = {"n_embd": 32, "n_layer": 1, "n_head": 2, "privacy_stop": False, "epochs": 2}


@pytest.fixture(scope="module")
def pima():
    train, test = real("MASS/Pima.tr"), real("MASS/Pima.te")
    schema = infer_schema(pd.concat([train, test], ignore_index=True), target="type")
    return train, test, schema


def test_probabilities_are_sklearns_and_rank_the_real_test_rows(pima):
    from sklearn.linear_model import LogisticRegression

    train, test, schema = pima
    lm = LabelModel.fit(train, schema)
    assert lm.classes == ["No", "Yes"]
    p = lm.proba(test)
    assert p.shape == (len(test), 2) and np.allclose(p.sum(axis=1), 1)
    # the same regression sklearn fits, scored by our own forward pass
    ref = LogisticRegression(C=1.0, max_iter=5000).fit(
        _design(train, lm.features), (train["type"] == "Yes").astype(int)
    )
    assert np.allclose(p[:, 1], ref.predict_proba(_design(test, lm.features))[:, 1], atol=1e-6)
    # logistic regression on Pima.tr ranks Pima.te well (published figures: AUC about 0.85)
    assert roc_auc_score(test["type"] == "Yes", p[:, 1]) > 0.8


def test_multiclass_target_missing_values_and_a_json_round_trip():
    df = real("survival/pbc").drop(columns=["id"])
    schema = infer_schema(df, target="status")
    assert df.isna().any().any()  # pbc has missing laboratory values
    lm = LabelModel.fit(df, schema)
    assert lm.classes == [0, 1, 2]
    p = lm.proba(df)
    assert p.shape == (len(df), 3) and np.isfinite(p).all() and np.allclose(p.sum(axis=1), 1)
    again = LabelModel.from_dict(json.loads(json.dumps(lm.to_dict())))
    assert np.allclose(again.proba(df), p)
    # most of the real rows get their own class as the most likely one
    assert (np.argmax(p, axis=1) == df["status"].to_numpy()).mean() > 0.7


def test_draws_follow_the_probabilities(pima):
    train, _, schema = pima
    lm = LabelModel.fit(train, schema)
    row = train.iloc[[int(np.argmax(train["glu"]))]]
    many = pd.concat([row] * 4000, ignore_index=True)
    drawn = lm.draw(many, np.random.default_rng(0))
    assert drawn.isin(["Yes", "No"]).all()
    assert (drawn == "Yes").mean() == pytest.approx(lm.proba(row)[0, 1], abs=0.03)


def test_why_not_names_the_reason(pima):
    train, _, _ = pima
    assert "no target" in LabelModel.why_not(train, infer_schema(train))
    numeric = infer_schema(train, target="glu")
    assert "numeric" in LabelModel.why_not(train, numeric) or "integer" in LabelModel.why_not(
        train, numeric
    )
    with pytest.raises(ValueError, match="no target"):
        LabelModel.fit(train, infer_schema(train))


def test_tabular_lm_redraws_the_target_from_the_label_model(pima, tmp_path):
    train, test, schema = pima
    plain = TabularLM(**TINY, seed=0, label_model=False).fit(train, schema=schema)
    gen = TabularLM(**TINY, seed=0, label_model=True).fit(train, schema=schema)
    assert gen.training_record_["n_rows"] == len(train)
    out = gen.sample(600, seed=1)
    schema.validate(out)
    # the outcome now follows the regression: rows labelled Yes have a higher p(Yes)
    p = gen.label_model_.proba(out)[:, 1]
    assert p[out["type"] == "Yes"].mean() - p[out["type"] == "No"].mean() > 0.2
    p_plain = gen.label_model_.proba(ref := plain.sample(600, seed=1))[:, 1]
    gap_plain = p_plain[ref["type"] == "Yes"].mean() - p_plain[ref["type"] == "No"].mean()
    assert p[out["type"] == "Yes"].mean() - p[out["type"] == "No"].mean() > gap_plain
    # a condition on the target is kept; save and load give the same rows
    assert (gen.sample(50, conditions={"type": "Yes"}, seed=2)["type"] == "Yes").all()
    gen.save(tmp_path / "m")
    assert "label_model" in json.loads((tmp_path / "m" / "generator.json").read_text())
    assert TabularLM.load(tmp_path / "m").sample(80, seed=3).equals(gen.sample(80, seed=3))
    # share 0 keeps the model's own labels (rows as target_last sampling draws them)
    gen.label_share = 0.0
    keep = gen.sample(80, seed=3)
    gen.label_model, gen.label_model_, gen.target_last = False, None, True
    assert keep.equals(gen.sample(80, seed=3))


def test_label_model_without_a_categorical_target_is_refused(pima):
    train, _, _ = pima
    with pytest.raises(ParameterError, match="label_model needs a categorical or boolean target"):
        TabularLM(**TINY, label_model=True).fit(train, schema=infer_schema(train))
    with pytest.raises(ParameterError, match="label_share"):
        TabularLM(**TINY, label_model=True, label_share=2.0).fit(train)


def test_automatic_label_model_follows_the_table(pima, monkeypatch):
    from healthsynth.generators.tabular_lm import _generator

    train, _, schema = pima
    gen = TabularLM(**TINY, label_model=None).fit(train, schema=schema)
    assert gen.label_model_ is not None
    assert gen.training_record_["label_model"].startswith("on (automatic")
    gen = TabularLM(**TINY, label_model=None).fit(train, schema=infer_schema(train))
    assert gen.label_model_ is None and "no target" in gen.training_record_["label_model"]
    monkeypatch.setattr(_generator, "LABEL_MODEL_MAX_ROWS", 100)
    gen = TabularLM(**TINY, label_model=None).fit(train, schema=schema)
    assert gen.label_model_ is None and "200 rows" in gen.training_record_["label_model"]
    off = TabularLM(**TINY, label_model=False).fit(train, schema=schema)
    assert off.label_model_ is None and off.training_record_["label_model"] == "off"
    # the default is automatic
    assert TabularLM().label_model is None
