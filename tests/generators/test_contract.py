"""The behaviour every registered generator shares (run over the whole registry)."""

from __future__ import annotations

import pandas as pd
import pytest

from healthsynth.data import infer_schema
from healthsynth.errors import NotFittedError, ParameterError
from healthsynth.generators import load_generator, registry
from tests.helpers import extra_or_skip, real

FAST = {
    "tabular-lm": {"epochs": 3, "n_embd": 32, "n_layer": 1, "n_head": 2, "privacy_stop": False},
    "ctgan": {"epochs": 2},
    "tvae": {"epochs": 2},
    "bayesian-network": {"bins": 5},
}


@pytest.fixture(scope="module", params=registry.names())
def fitted(request, tmp_path_factory):
    df = real("survival/colon", 400)
    schema = infer_schema(df, target="status", sensitive=["sex"])
    params = dict(FAST.get(request.param, {}))
    if request.param == "prompted-llm":
        # a real chat-completions server on 127.0.0.1 that writes rows like the data's
        from healthsynth.llm.testing import ChatServer, RowReplier

        server = ChatServer(RowReplier(df, flip={"status": 0.1})).__enter__()
        request.addfinalizer(lambda: server.__exit__(None, None, None))
        log = tmp_path_factory.mktemp("llm") / "audit.jsonl"
        params.update(endpoint=server.url, llm_model="test-model", audit_log=str(log))
    gen = registry.create(request.param, **params)
    with extra_or_skip():
        gen.fit(df, schema=schema)
    return gen, schema


def test_registry_lists_without_importing_torch_heavy_code():
    assert "tabular-lm" in registry.names()
    with pytest.raises(ParameterError, match="known generators: .*tabular-lm"):
        registry.get("nope")


def test_unfitted_use_says_to_fit_first():
    for name in registry.names():
        with pytest.raises(NotFittedError, match="call fit"):
            registry.create(name).sample(5)


def test_sample_matches_schema_and_seed_reproduces(fitted):
    gen, schema = fitted
    a = gen.sample(300, seed=11)
    assert len(a) == 300
    assert list(a.columns) == [c.name for c in schema.columns if c.kind != "text"]
    schema.validate(a)
    pd.testing.assert_frame_equal(a, gen.sample(300, seed=11))
    assert not a.equals(gen.sample(300, seed=12))


def test_bad_n_is_refused(fitted):
    gen, _ = fitted
    for n in (0, -5, 2.5, True):
        with pytest.raises(ParameterError, match="n must be a positive whole number"):
            gen.sample(n)


def test_save_load_round_trip(fitted, tmp_path):
    gen, _ = fitted
    gen.save(tmp_path / "m")
    names = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert names == [
        ".healthsynth-manifest.json",
        "generator.json",
        "model",
        "schema.json",
        "training.json",
    ]
    if not type(gen).pickled:
        assert not list((tmp_path / "m").rglob("*.bin"))
        assert not list((tmp_path / "m").rglob("*.pkl"))
    # a folder holding a pickle loads only when the caller trusts it (tests/security/)
    back = load_generator(tmp_path / "m", trust_pickle=type(gen).pickled)
    pd.testing.assert_frame_equal(back.sample(200, seed=3), gen.sample(200, seed=3))
