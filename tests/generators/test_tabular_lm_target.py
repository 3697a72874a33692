"""tabular-lm's target-aware settings: training rows with the target last, sampling it last."""

from __future__ import annotations

import numpy as np
import pytest

from healthsynth.data import infer_schema
from healthsynth.errors import ParameterError
from healthsynth.generators.tabular_lm import TabularLM, _slot_model
from tests.helpers import real

TINY = {"n_embd": 32, "n_layer": 1, "n_head": 2, "privacy_stop": False, "epochs": 2}


@pytest.fixture(scope="module")
def pbc():
    df = real("survival/pbc").drop(columns=["id"]).iloc[:120]
    return df, infer_schema(df, target="status")


def test_slots_last_keeps_the_other_slots_in_their_order():
    order = np.array([[3, 0, 4, 1, 2], [0, 1, 2, 3, 4]])
    out = _slot_model.slots_last(order, np.array([1, 2]))
    assert out.tolist() == [[3, 0, 4, 1, 2], [0, 3, 4, 1, 2]]
    assert _slot_model.slots_last(np.arange(4), np.array([0])).tolist() == [1, 2, 3, 0]


def test_target_share_puts_the_target_last_in_that_share_of_training_rows(pbc, monkeypatch):
    df, schema = pbc
    seen = []
    original = _slot_model.TableObjective._loss

    def spy(self, model, local, order):
        if model.training:  # validation runs in eval mode, columns in schema order
            seen.append(order.copy())
        return original(self, model, local, order)

    monkeypatch.setattr(_slot_model.TableObjective, "_loss", spy)
    gen = TabularLM(**TINY, target_share=1.0, perm_prob=0.5, seed=0).fit(df, schema=schema)
    target = _slot_model.target_slots(gen.codec_)
    assert len(target) == 1
    orders = np.vstack(seen)
    assert (orders[:, -1] == target[0]).all()

    seen.clear()
    TabularLM(**TINY, target_share=0.0, perm_prob=0.5, seed=0).fit(df, schema=schema)
    orders = np.vstack(seen)
    share = (orders[:, -1] == target[0]).mean()
    assert share < 0.3  # only where a random order happens to end with it


def test_target_last_samples_the_target_last_unless_it_is_conditioned(pbc, monkeypatch):
    from healthsynth.generators._lm import _slots

    df, schema = pbc
    gen = TabularLM(**TINY, seed=0, label_model=False).fit(df, schema=schema)
    target = int(_slot_model.target_slots(gen.codec_)[0])
    orders = []
    original = _slots.sample_slots

    def spy(*args, **kwargs):
        orders.append(np.asarray(kwargs["order"]))
        return original(*args, **kwargs)

    monkeypatch.setattr(_slots, "sample_slots", spy)
    plain = gen.sample(50, seed=0)
    assert orders[-1][-1] != target
    gen.target_last = True
    last = gen.sample(50, seed=0)
    assert orders[-1][-1] == target
    schema.validate(last)
    assert not last.equals(plain)
    fixed = gen.sample(20, conditions={"status": 2}, seed=0)
    assert orders[-1][0] == target and (fixed["status"] == 2).all()
    # conditioned on another column, the target still comes last
    gen.sample(20, conditions={"sex": "f"}, seed=0)
    assert orders[-1][-1] == target and orders[-1][0] != target


def test_target_settings_are_checked_and_saved(pbc, tmp_path):
    df, schema = pbc
    with pytest.raises(ParameterError, match="target_share"):
        TabularLM(target_share=1.5).fit(df, schema=schema)
    with pytest.raises(ParameterError, match="target_last"):
        TabularLM(target_last="yes").fit(df, schema=schema)  # type: ignore[arg-type]
    gen = TabularLM(**TINY, target_last=True, seed=0).fit(df, schema=schema)
    gen.save(tmp_path / "m")
    again = TabularLM.load(tmp_path / "m")
    assert again.target_last is True
    assert again.sample(30, seed=4).equals(gen.sample(30, seed=4))
