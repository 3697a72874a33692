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
    from healthsynth.generators.tabular_lm import _labels

    train, _, schema = pima
    gen = TabularLM(**TINY, label_model=None).fit(train, schema=schema)
    assert gen.label_model_ is not None
    assert gen.training_record_["label_model"].startswith("on (automatic")
    gen = TabularLM(**TINY, label_model=None).fit(train, schema=infer_schema(train))
    assert gen.label_model_ is None and "no target" in gen.training_record_["label_model"]
    monkeypatch.setattr(_labels, "LABEL_MODEL_MAX_ROWS", 100)
    gen = TabularLM(**TINY, label_model=None).fit(train, schema=schema)
    assert gen.label_model_ is None and "200 rows" in gen.training_record_["label_model"]
    off = TabularLM(**TINY, label_model=False).fit(train, schema=schema)
    assert off.label_model_ is None and off.training_record_["label_model"] == "off"
    # the default is automatic
    assert TabularLM().label_model is None


# -- the boosted kind ---------------------------------------------------------------------------
def test_boosted_probabilities_are_sklearns_and_survive_json():
    from sklearn.ensemble import GradientBoostingClassifier

    from healthsynth.generators._label_model import BOOSTED, design_and_codes

    df = real("survival/pbc").drop(columns=["id"])
    schema = infer_schema(df, target="status")
    train, test = df.iloc[:300], df.iloc[300:]
    lm = LabelModel.fit(train, schema, kind="boosted", seed=0)
    assert lm.kind == "boosted" and lm.classes == [0, 1, 2] and lm.C is None
    # our own walk down the saved trees gives scikit-learn's probabilities
    x, codes, _ = design_and_codes(train, schema, lm.features)
    ref = GradientBoostingClassifier(**BOOSTED, random_state=0).fit(x, codes)
    p = lm.proba(test)
    assert np.allclose(p, ref.predict_proba(_design(test, lm.features)), atol=1e-9)
    again = LabelModel.from_dict(json.loads(json.dumps(lm.to_dict())))
    assert np.allclose(again.proba(test), p, atol=1e-12)
    # it ranks the held-out patients: death (2) against the rest
    assert roc_auc_score(test["status"] == 2, p[:, 2]) > 0.75


def test_boosted_kind_keeps_a_sharp_threshold_that_the_regression_smooths():
    # MASS/birthwt: `low` is exactly birth weight under 2,500 g
    df = real("MASS/birthwt")
    schema = infer_schema(df, target="low")
    broken = {}
    for kind in ("logistic", "boosted"):
        lm = LabelModel.fit(df, schema, kind=kind, seed=0)
        drawn = np.stack([lm.draw(df, np.random.default_rng(r)) for r in range(20)])
        broken[kind] = float((drawn.astype(int) != (df["bwt"] < 2500).to_numpy()).mean())
    assert broken["boosted"] < 0.02 < broken["logistic"]


def test_a_missing_category_is_a_feature():
    # survival/flchain: the cause of death (`chapter`) is given exactly for those who died
    df = (
        real("survival/flchain")
        .sample(1500, random_state=0)
        .drop(columns=["rownames"], errors="ignore")
    )
    schema = infer_schema(df, target="death")
    lm = LabelModel.fit(df, schema, kind="logistic")
    chapter = next(f for f in lm.features if f["name"] == "chapter")
    assert chapter.get("missing") is True
    p = lm.proba(df)[:, lm.classes.index(1)]
    assert p[df["chapter"].isna()].max() < 0.2 and p[df["chapter"].notna()].min() > 0.8


def test_a_label_model_saved_before_the_kinds_loads_as_logistic(pima):
    train, test, schema = pima
    lm = LabelModel.fit(train, schema)
    old = {k: v for k, v in lm.to_dict().items() if k not in ("kind", "trees", "baseline")}
    old.pop("learning_rate")
    assert LabelModel.from_dict(old).kind == "logistic"
    assert np.allclose(LabelModel.from_dict(old).proba(test), lm.proba(test))
    with pytest.raises(ValueError, match="kind"):
        LabelModel.fit(train, schema, kind="forest")


def test_spline_terms_carry_a_bend_the_regression_smooths():
    # pbc: the risk of death rises with the log of bilirubin, not the value; spline terms follow
    # the bend, so held-out patients get better probabilities than from the plain regression
    from sklearn.metrics import log_loss

    from healthsynth.data import train_holdout_split

    df = real("survival/pbc").drop(columns=["id"])
    schema = infer_schema(df, target="status")
    train, held = train_holdout_split(df, holdout=0.25, seed=0)
    loss = {}
    for kind in ("logistic", "spline"):
        lm = LabelModel.fit(train, schema, kind=kind)
        loss[kind] = log_loss(held["status"], lm.proba(held), labels=lm.classes)
    assert loss["spline"] < loss["logistic"] - 0.03
    bends = {f["name"] for f in lm.features if "knots" in f}
    # numbers with many values bend; stage (1-4) and edema (0, 0.5, 1) stay straight lines
    assert {"bili", "age", "albumin"} <= bends and not {"stage", "edema"} & bends
    again = LabelModel.from_dict(json.loads(json.dumps(lm.to_dict())))
    assert again.kind == "spline" and np.allclose(again.proba(held), lm.proba(held))


def test_spline_terms_are_scikit_learns_without_importing_it():
    # our numpy B-splines (so that sampling needs no scikit-learn) against SplineTransformer,
    # on pbc's bilirubin, inside the knots and far beyond them on both sides
    from sklearn.preprocessing import SplineTransformer

    from healthsynth.generators._label_model import _spline_terms

    df = real("survival/pbc").drop(columns=["id"])
    lm = LabelModel.fit(df, infer_schema(df, target="status"), kind="spline")
    bili = next(f for f in lm.features if f["name"] == "bili")
    z = np.r_[(df["bili"].to_numpy() - bili["mean"]) / bili["sd"], -40.0, 0.0, 250.0]
    at = np.asarray(bili["knots"])[:, None]
    ref = SplineTransformer(knots=at, degree=3, extrapolation="linear").fit(at)
    assert np.allclose(_spline_terms(z, bili["knots"]), ref.transform(z[:, None]), atol=1e-12)


def test_auto_keeps_the_kind_with_the_lower_cross_validated_loss():
    from sklearn.model_selection import StratifiedKFold

    df = real("survival/pbc").drop(columns=["id"])
    schema = infer_schema(df, target="status")
    lm = LabelModel.fit(df, schema, kind="auto", seed=3)
    assert set(lm.selection) == {"logistic", "spline"}
    assert lm.kind == min(lm.selection, key=lm.selection.get) == "spline"
    # the scores are each kind's log-loss on the rows of the folds it was not fitted on
    y = df["status"].astype(str).to_numpy()
    folds = StratifiedKFold(5, shuffle=True, random_state=3).split(df, y)
    loss = 0.0
    for fit_at, score_at in folds:
        p = LabelModel.fit(df.iloc[fit_at], schema, kind="logistic").proba(df.iloc[score_at])
        loss -= np.log(p[np.arange(len(score_at)), df["status"].to_numpy()[score_at]]).sum()
    assert lm.selection["logistic"] == pytest.approx(loss / len(df), abs=1e-5)
    # the choice is saved with the model
    assert LabelModel.from_dict(json.loads(json.dumps(lm.to_dict()))).selection == lm.selection


def test_a_class_too_rare_to_split_leaves_auto_with_the_regression(pima):
    train, _, schema = pima
    few = pd.concat([train[train["type"] == "No"], train[train["type"] == "Yes"].head(1)])
    lm = LabelModel.fit(few, schema, kind="auto")
    assert lm.kind == "logistic" and lm.selection == {}
    gen = TabularLM(**TINY, label_model=True).fit(few, schema=schema)
    assert gen.training_record_["label_model"] == (
        "on (logistic: a class too rare to compare kinds on held-out rows)"
    )


def test_broken_saved_knots_are_refused(pima):
    train, _, schema = pima
    state = LabelModel.fit(train, schema, kind="spline").to_dict()
    feature = next(f for f in state["features"] if "knots" in f)
    feature["knots"] = feature["knots"][::-1]
    with pytest.raises(ValueError, match="spline knots of '.*' are not an increasing list"):
        LabelModel.from_dict(state)


def test_tabular_lm_takes_the_kind_asked_for(pima):
    train, _, schema = pima
    gen = TabularLM(**TINY, label_model=True).fit(train, schema=schema)
    # the default, auto: the kind with the lower cross-validated loss, and the record says so
    assert gen.label_model_.kind == min(
        gen.label_model_.selection, key=gen.label_model_.selection.get
    )
    assert gen.training_record_["label_model_kind"] == gen.label_model_.kind
    assert (
        f"{gen.label_model_.kind} chosen by five-fold log-loss (logistic 0."
        in (gen.training_record_["label_model"])
    )
    gen = TabularLM(**TINY, label_model=True, label_kind="logistic").fit(train, schema=schema)
    assert gen.label_model_.kind == "logistic" and gen.label_model_.selection is None
    gen = TabularLM(**TINY, label_model=None, label_kind="boosted").fit(train, schema=schema)
    assert gen.label_model_.kind == "boosted"
    assert gen.training_record_["label_model_kind"] == "boosted"
    out = gen.sample(300, seed=0)
    schema.validate(out)
    assert set(out["type"]) == {"Yes", "No"}
    off = TabularLM(**TINY, label_model=False, label_kind="boosted").fit(train, schema=schema)
    assert off.label_model_ is None and off.training_record_["label_model_kind"] is None
    with pytest.raises(ParameterError, match="label_kind.*auto, logistic, spline, boosted"):
        TabularLM(**TINY, label_kind="forest").fit(train, schema=schema)


def test_boosted_label_model_round_trips_through_a_model_folder(pima, tmp_path):
    train, _, schema = pima
    gen = TabularLM(**TINY, label_model=True, label_kind="boosted").fit(train, schema=schema)
    gen.save(tmp_path / "m")
    again = TabularLM.load(tmp_path / "m")
    assert again.label_model_.kind == "boosted"
    assert again.sample(120, seed=4).equals(gen.sample(120, seed=4))


@pytest.mark.parametrize("kind", ["boosted", "spline"])
def test_boosted_or_spline_label_model_under_dp_is_refused(pima, kind):
    train, _, schema = pima
    with pytest.raises(ParameterError, match=f"'{kind}' cannot be trained with differential"):
        TabularLM(**TINY, dp_epsilon=8.0, label_model=True, label_kind=kind).fit(
            train, schema=schema
        )


def test_a_broken_saved_tree_is_refused(pima):
    train, _, schema = pima
    state = LabelModel.fit(train, schema, kind="boosted", seed=0).to_dict()
    tree = state["trees"][0][0]
    tree["left"][0] = len(tree["left"]) + 5  # a child past the end
    with pytest.raises(ValueError, match="outside the tree"):
        LabelModel.from_dict(state)
    del state["trees"][0][0]["value"][1:]
    with pytest.raises(ValueError, match="different lengths"):
        LabelModel.from_dict(state)


@pytest.mark.parametrize("knots", ["abc", {"a": 1}, [[1, 2]], [3, 1], None])
def test_a_model_folder_with_broken_knots_is_refused_in_one_sentence(pima, tmp_path, knots):
    from healthsynth.errors import ModelFolderError

    train, _, schema = pima
    folder = tmp_path / "m"
    TabularLM(**TINY, label_model=True, label_kind="spline").fit(train, schema=schema).save(folder)
    meta = json.loads((folder / "generator.json").read_text())
    next(f for f in meta["label_model"]["features"] if "knots" in f)["knots"] = knots
    (folder / "generator.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFolderError, match="corrupted: generator.json's label model"):
        TabularLM.load(folder)
