"""Fine-tuning a local pretrained causal LM on rows written as text, on the shared engine.

A row reads ``age is 63, sex is female, bmi is 31.2`` followed by the end-of-text token, so a
pretrained model can bring what it knows about such words. Numbers are fed to the model one
character at a time, in fine-tuning and in decoding alike, so both agree on the tokenization.

The pretrained checkpoint and its tokenizer need ``transformers`` (GPT-2 or Llama class, read
from disk only). Training runs the shared loop (:mod:`healthsynth.generators._lm._train`) with
:class:`TextObjective`; decoding runs the shared sampler (:func:`~._lm._decode.decode`) with the
model's own cache (:class:`~._lm._decode.HFDecoder`) and :class:`._text_decode.TextPolicy`.
What differs from the slot paths: no token types (the text itself says which column comes),
weight decay 0 and a learning rate of 1e-4 by default, validation in batches of 32 rows, and
masks built per row in Python.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F  # noqa: N812

from healthsynth.data import Schema
from healthsynth.errors import ModelFolderError, ParameterError
from healthsynth.generators._conditions import Condition
from healthsynth.generators._lm._train import BatchLoss, on_device
from healthsynth.generators.tabular_lm._codec import TableCodec
from healthsynth.generators.tabular_lm._text_decode import Trie

__all__ = ["TextLM", "TextObjective"]

_MISSING = "none"


class TextLM:
    """A pretrained causal LM plus the row ↔ text mapping for one table."""

    def __init__(self, model: Any, tokenizer: Any, codec: TableCodec, schema: Schema) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.codec = codec
        self.schema = schema
        self.columns = codec.columns
        tok = tokenizer
        self.eos = tok.eos_token_id if tok.eos_token_id is not None else 0
        self.bos = tok.bos_token_id if tok.bos_token_id is not None else self.eos
        self.sep = self._ids(", ")
        self.heads = [self._ids(f"{c.name} is ") for c in self.columns]
        self.chars: dict[str, int] = {}
        for ch in "0123456789.-":
            ids = self._ids(ch)
            if len(ids) != 1:
                raise ParameterError(
                    f"base_model's tokenizer splits the character {ch!r} into {len(ids)} tokens; "
                    "tabular-lm needs one token per digit"
                )
            self.chars[ch] = ids[0]
        self.char_of = {v: k for k, v in self.chars.items()}
        self.missing = self._ids(_MISSING)
        self.tries: dict[str, Trie] = {}
        self.ranges: dict[str, tuple[float, float] | None] = {}
        for c in self.columns:
            cc = codec.codecs[c.name]
            if cc.mode == "continuous":
                self.ranges[c.name] = (float(cc.edges[0]), float(cc.edges[-1]))
            elif cc.mode == "discrete":
                self.ranges[c.name] = (
                    (float(min(cc.values)), float(max(cc.values))) if cc.values else None
                )
            if cc.mode == "cat":
                trie = Trie()
                for v in cc.values:
                    trie.add(self._ids(str(v)), v)
                if cc.has_na:
                    trie.add(self.missing, None)
                self.tries[c.name] = trie

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_base(cls, path: Path, codec: TableCodec, schema: Schema) -> TextLM:
        """Load a local pretrained checkpoint (never from a hub)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if not path.is_dir() or not (path / "config.json").exists():
            raise ParameterError(
                f"base_model {path} is not a local model folder with a config.json; give the "
                "path of a Hugging Face checkpoint saved on disk"
            )
        try:
            tokenizer = AutoTokenizer.from_pretrained(
                path, local_files_only=True, trust_remote_code=False
            )
            model = AutoModelForCausalLM.from_pretrained(
                path, local_files_only=True, use_safetensors=True, trust_remote_code=False
            )
        except Exception as e:  # many exception types from transformers
            raise ParameterError(f"base_model {path} could not be loaded ({e})") from None
        return cls(model, tokenizer, codec, schema)

    @classmethod
    def load(cls, path: Path, codec: TableCodec, schema: Schema) -> TextLM:
        """Load a fine-tuned model folder."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(
                path, local_files_only=True, trust_remote_code=False
            )
            model = AutoModelForCausalLM.from_pretrained(
                path, local_files_only=True, use_safetensors=True, trust_remote_code=False
            )
        except Exception as e:
            raise ModelFolderError(f"model folder {path.parent} is corrupted ({e})") from None
        model.eval()
        return cls(model, tokenizer, codec, schema)

    def save(self, path: Path) -> None:
        """Write model and tokenizer (safetensors)."""
        self.model.save_pretrained(path, safe_serialization=True)
        self.tokenizer.save_pretrained(path)

    # -- encoding -------------------------------------------------------------------------------
    def _value_ids(self, ci: int, value: Any) -> list[int]:
        c = self.columns[ci]
        cc = self.codec.codecs[c.name]
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return self.missing
        if cc.mode == "cat":
            return self._ids(str(value))
        return [self.chars[ch] for ch in self._format(ci, value)]

    def _format(self, ci: int, value: Any) -> str:
        c = self.columns[ci]
        x = (
            float(value)
            if c.kind != "datetime"
            else float((pd.Timestamp(value) - pd.Timestamp("1970-01-01")).total_seconds() / 86400.0)
        )
        if c.kind == "datetime" and c.resolution == "day":
            prec = 0  # whole days since 1970, as the real dates
        else:
            prec = c.precision if c.precision is not None else 6
        text = f"{x:.{prec}f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text

    def encode_row(self, row: pd.Series, order: list[int]) -> list[int]:
        """Token ids of one row with its columns in ``order``."""
        ids = [self.bos]
        for k, ci in enumerate(order):
            ids += self.heads[ci] + self._value_ids(ci, row[self.columns[ci].name])
            ids += self.sep if k < len(order) - 1 else [self.eos]
        return ids

    def orders(self, n: int, perm_prob: float, rng: np.random.Generator) -> list[list[int]]:
        """Column orders of ``n`` rows: canonical, or a random subset of columns first."""
        c = len(self.columns)
        out = []
        for _ in range(n):
            if c > 1 and rng.random() < perm_prob:
                k = int(rng.integers(1, c))
                front = [int(i) for i in rng.permutation(c)[:k]]
                out.append(front + [i for i in range(c) if i not in front])
            else:
                out.append(list(range(c)))
        return out

    def _batch(self, seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.eos, dtype=torch.long)
        labels = torch.full((len(seqs), width), -100, dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
            labels[i, : len(s)] = torch.tensor(s)
        return ids, labels

    def loss(self, seqs: list[list[int]], model: Any = None) -> torch.Tensor:
        """Mean next-token loss of token sequences (padded on the right).

        ``model`` defaults to this one's (a training strategy may pass a wrapped one).
        """
        model = self.model if model is None else model
        ids, labels = on_device(model, *self._batch(seqs))
        # no attention mask: the padding is on the right, so causal attention never lets a
        # real token see it, and its labels are ignored; without a mask the attention runs
        # its fused causal kernel instead of the masked one (several times faster on a CPU)
        logits = model(input_ids=ids).logits[:, :-1]
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100
        )

    # -- sampling -------------------------------------------------------------------------------
    def sample(
        self,
        n: int,
        conds: dict[str, Condition],
        *,
        rng: np.random.Generator,
        draws: np.random.Generator,
        temperature: float,
        batch_size: int,
    ) -> pd.DataFrame:
        """Draw ``n`` rows; conditioned columns are written first (``draws``: token draws)."""
        from healthsynth.generators._lm._decode import HFDecoder, decode
        from healthsynth.generators.tabular_lm._codec import _DATE_STEPS, _restore_dtype
        from healthsynth.generators.tabular_lm._text_decode import TextPolicy

        names = [c.name for c in self.columns]
        first = [names.index(c) for c in conds]
        order = first + [i for i in range(len(names)) if i not in first]
        vocab = self.model.get_output_embeddings().weight.shape[0]
        rows: list[dict[str, Any]] = []
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            policy = TextPolicy(self, m, order, conds, vocab)
            decode(
                HFDecoder(self.model, m),
                policy,
                rng=draws,
                max_steps=4096,
                temperature=temperature,
            )
            rows += policy.rows
        out = {}
        for c in self.columns:
            cc = self.codec.codecs[c.name]
            vals = [r.get(c.name) for r in rows]
            if cc.mode == "cat":
                s = pd.Series(vals, dtype=object, name=c.name)
                out[c.name] = s if c.kind == "datetime" else _restore_dtype(s, c)
                continue
            s = pd.Series(np.array([np.nan if v is None else v for v in vals], float))
            step = _DATE_STEPS.get(c.resolution or "") if c.kind == "datetime" else None
            if step is not None:
                s = (s / step).round() * step  # the column's resolution: days or seconds
            out[c.name] = _restore_dtype(s.rename(c.name), c)
        return pd.DataFrame(out)


class TextObjective:
    """Next-token prediction on rows written as text (an :class:`~._lm._train.Objective`).

    Each epoch writes every training row anew, half of them (``perm_prob``) with a random
    subset of columns first, so that sampling can condition on any columns.
    """

    def __init__(
        self,
        lm: TextLM,
        train_df: pd.DataFrame,
        val_df: pd.DataFrame,
        *,
        batch_size: int,
        perm_prob: float,
        val_batch_size: int = 32,
    ) -> None:
        self.lm, self.train, self.batch_size, self.perm_prob = lm, train_df, batch_size, perm_prob
        canon = list(range(len(lm.columns)))
        self.val = [lm.encode_row(r, canon) for _, r in val_df.iterrows()]
        self.val_batch_size = val_batch_size
        self.seqs: list[list[int]] = []

    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.train) / self.batch_size)

    def plan(self, rng: np.random.Generator) -> list[np.ndarray]:
        orders = self.lm.orders(len(self.train), self.perm_prob, rng)
        rows = self.train.iterrows()
        self.seqs = [self.lm.encode_row(r, o) for (_, r), o in zip(rows, orders, strict=True)]
        perm = rng.permutation(len(self.seqs))
        return [perm[i : i + self.batch_size] for i in range(0, len(perm), self.batch_size)]

    def loss(self, model: Any, indices: np.ndarray, rng: np.random.Generator) -> BatchLoss:
        batch = [self.seqs[j] for j in indices]
        loss = self.lm.loss(batch, model)
        return BatchLoss(loss, float(len(batch)), sum(len(s) - 1 for s in batch))

    def validation_loss(self, model: Any) -> float:
        total = 0.0
        for i in range(0, len(self.val), self.val_batch_size):
            part = self.val[i : i + self.val_batch_size]
            total += float(self.lm.loss(part, model)) * len(part)
        return total / max(len(self.val), 1)
