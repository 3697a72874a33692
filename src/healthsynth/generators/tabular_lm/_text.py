"""Fine-tuning a local pretrained causal LM on rows written as text, with constrained decoding.

A row reads ``age is 63, sex is female, bmi is 31.2`` followed by the end-of-text token, so a
pretrained model can bring what it knows about such words. Decoding is constrained so the text
always parses back into a valid row:

* the ``name is `` parts and the separators are forced;
* a categorical value is drawn from a token trie of the column's categories;
* a number is written one character per token (digits, ``-``, ``.``), and only characters that
  can still end in a number inside the column's range (and the condition's) at its precision are
  allowed; the separator is allowed once the number is complete.

Numbers are fed to the model one character at a time during fine-tuning too, so training and
decoding agree on the tokenization.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F  # noqa: N812

from healthsynth.data import Schema
from healthsynth.errors import ModelFolderError, ParameterError
from healthsynth.generators._conditions import Condition
from healthsynth.generators.tabular_lm._codec import TableCodec

__all__ = ["TextLM"]

_MISSING = "none"


class _Trie:
    def __init__(self) -> None:
        self.children: dict[int, _Trie] = {}
        self.value: Any = None
        self.terminal = False

    def add(self, ids: list[int], value: Any) -> None:
        node = self
        for i in ids:
            node = node.children.setdefault(i, _Trie())
        node.terminal, node.value = True, value


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
        self.tries: dict[str, _Trie] = {}
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
                trie = _Trie()
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

    def _orders(self, n: int, perm_prob: float, rng: np.random.Generator) -> list[list[int]]:
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

    def _loss(self, seqs: list[list[int]]) -> torch.Tensor:
        ids, labels = self._batch(seqs)
        attn = (labels != -100).long()
        logits = self.model(input_ids=ids, attention_mask=attn).logits[:, :-1]
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100
        )

    # -- training -------------------------------------------------------------------------------
    def train(
        self,
        train_df: pd.DataFrame,
        val_df: pd.DataFrame,
        *,
        epochs: int,
        batch_size: int,
        learning_rate: float,
        patience: int,
        perm_prob: float,
        max_time: float | None,
        seed: int,
        privacy_check: Callable[[Any], dict[str, Any]] | None,
        privacy_every: int,
        progress: Any = None,
    ) -> dict[str, Any]:
        """Fine-tune with early stopping on validation loss."""
        rng = np.random.default_rng(seed)
        canon = list(range(len(self.columns)))
        val_seqs = [self.encode_row(r, canon) for _, r in val_df.iterrows()]
        opt = torch.optim.AdamW(self.model.parameters(), lr=learning_rate, weight_decay=0.0)
        history: list[dict[str, Any]] = []
        best = (math.inf, copy.deepcopy(self.model.state_dict()), 0)
        privacy_log: list[dict[str, Any]] = []
        stop_reason, bad, step = "epochs", 0, 0
        start = time.perf_counter()
        task = progress.add_task("fine-tuning", total=epochs) if progress is not None else None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for epoch in range(1, epochs + 1):
                self.model.train()
                orders = self._orders(len(train_df), perm_prob, rng)
                rows = train_df.iterrows()
                seqs = [self.encode_row(r, o) for (_, r), o in zip(rows, orders, strict=True)]
                perm = rng.permutation(len(seqs))
                total, seen = 0.0, 0
                for i in range(0, len(seqs), batch_size):
                    batch = [seqs[j] for j in perm[i : i + batch_size]]
                    loss = self._loss(batch)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                    opt.step()
                    step += 1
                    total += float(loss.detach()) * len(batch)
                    seen += len(batch)
                    if max_time is not None and time.perf_counter() - start > max_time:
                        break
                self.model.eval()
                with torch.inference_mode():
                    val = sum(
                        float(self._loss(val_seqs[i : i + 32])) * len(val_seqs[i : i + 32])
                        for i in range(0, len(val_seqs), 32)
                    ) / max(len(val_seqs), 1)
                history.append(
                    {
                        "epoch": epoch,
                        "train_nll_per_token": total / max(seen, 1),
                        "val_nll_per_token": val,
                        "seconds": round(time.perf_counter() - start, 3),
                    }
                )
                if progress is not None:
                    progress.update(task, advance=1, description=f"fine-tuning (val {val:.3f})")
                if val < best[0] - 1e-4:
                    best, bad = (val, copy.deepcopy(self.model.state_dict()), epoch), 0
                else:
                    bad += 1
                if privacy_check is not None and epoch % privacy_every == 0:
                    res = privacy_check(self.model)
                    res["epoch"] = epoch
                    privacy_log.append(res)
                    if not res["passed"]:
                        stop_reason = "privacy"
                        break
                if bad >= patience:
                    stop_reason = "early_stopping"
                    break
                if max_time is not None and time.perf_counter() - start > max_time:
                    stop_reason = "max_time"
                    break
        self.model.load_state_dict(best[1])
        self.model.eval()
        return {
            "epochs_run": len(history),
            "epochs_planned": epochs,
            "best_epoch": best[2],
            "best_val_nll_per_token": best[0],
            "stop_reason": stop_reason,
            "steps": step,
            "history": history,
            "privacy_checks": privacy_log,
            "train_seconds": round(time.perf_counter() - start, 3),
            "encoding": "text",
        }

    # -- sampling -------------------------------------------------------------------------------
    @torch.inference_mode()
    def sample(
        self,
        n: int,
        conds: dict[str, Condition],
        *,
        rng: np.random.Generator,
        generator: torch.Generator,
        temperature: float,
        batch_size: int,
    ) -> pd.DataFrame:
        """Draw ``n`` rows; conditioned columns are written first."""
        names = [c.name for c in self.columns]
        first = [names.index(c) for c in conds]
        order = first + [i for i in range(len(names)) if i not in first]
        rows: list[dict[str, Any]] = []
        for start in range(0, n, batch_size):
            rows += self._sample_batch(
                min(batch_size, n - start), order, conds, generator, temperature
            )
        out = {}
        for c in self.columns:
            cc = self.codec.codecs[c.name]
            vals = [r[c.name] for r in rows]
            if cc.mode == "cat":
                s = pd.Series(vals, dtype=object, name=c.name)
            else:
                s = pd.Series(np.array([np.nan if v is None else v for v in vals], float))
                if c.kind == "datetime":
                    s = pd.Timestamp("1970-01-01") + pd.to_timedelta(s, unit="D")
            from healthsynth.generators.tabular_lm._codec import _restore_dtype

            out[c.name] = s if c.kind == "datetime" else _restore_dtype(s.rename(c.name), c)
        return pd.DataFrame(out)

    def _allowed_numeric(
        self, ci: int, text: str, cond: Condition | None
    ) -> tuple[list[int], bool]:
        """Allowed next character tokens after ``text``, and whether ``text`` is complete."""
        c = self.columns[ci]
        span = self.ranges[c.name]
        if span is None:  # no value was ever present: only "missing" can be written
            return [], False
        lo, hi = span
        if cond is not None:
            lo, hi = max(lo, cond.low), min(hi, cond.high)
        prec = c.precision if c.precision is not None else 6
        allowed = [self.chars[ch] for ch in "0123456789.-" if _feasible(text + ch, lo, hi, prec)]
        return allowed, _complete(text, lo, hi, prec)

    def _sample_batch(
        self,
        n: int,
        order: list[int],
        conds: dict[str, Condition],
        generator: torch.Generator,
        temperature: float,
    ) -> list[dict[str, Any]]:
        from healthsynth.generators.tabular_lm._native import _cache_argument, _returned_cache

        model = self.model
        cache_arg = _cache_argument(model)
        vocab = model.get_output_embeddings().weight.shape[0]
        rows: list[dict[str, Any]] = [{} for _ in range(n)]
        # per-row state: queue of forced tokens, current column position, value state
        forced: list[list[int]] = [list(self.heads[order[0]]) for _ in range(n)]
        pos = [0] * n
        text = [""] * n
        node: list[_Trie | None] = [None] * n
        done = [False] * n
        prev = torch.full((n, 1), self.bos, dtype=torch.long)
        past = None
        for _ in range(4096):
            if all(done):
                break
            res = model(input_ids=prev, use_cache=True, **{cache_arg: past})
            past = _returned_cache(res)
            logits = res.logits[:, -1, :vocab] / temperature
            nxt = torch.full((n,), self.eos, dtype=torch.long)
            mask = torch.zeros((n, vocab), dtype=torch.bool)
            choose = []
            for i in range(n):
                if done[i]:
                    continue
                if forced[i]:
                    nxt[i] = forced[i].pop(0)
                    if not forced[i] and pos[i] < len(order):
                        node[i] = self.tries.get(self.columns[order[pos[i]]].name)
                    continue
                ci = order[pos[i]]
                name = self.columns[ci].name
                allowed = self._allowed_ids(
                    ci, text[i], node[i], conds.get(name), pos[i] == len(order) - 1
                )
                mask[i, allowed] = True
                choose.append(i)
            if choose:
                idx = torch.tensor(choose)
                masked = logits[idx].masked_fill(~mask[idx], float("-inf"))
                picks = torch.multinomial(torch.softmax(masked, 1), 1, generator=generator)
                for j, i in enumerate(choose):
                    tok = int(picks[j, 0])
                    nxt[i] = tok
                    self._advance(i, tok, order, rows, forced, pos, text, node, done)
            prev = nxt.unsqueeze(1)
            for i in range(n):
                if not done[i] and not forced[i] and pos[i] >= len(order):
                    done[i] = True
        return rows

    def _allowed_ids(
        self, ci: int, text: str, node: _Trie | None, cond: Condition | None, last: bool
    ) -> list[int]:
        name = self.columns[ci].name
        cc = self.codec.codecs[name]
        stop = self.eos if last else self.sep[0]
        if cc.mode == "cat":
            assert node is not None
            ids = [t for t, child in node.children.items() if _subtree_ok(child, cond)]
            if (
                node.terminal
                and node is not self.tries[name]
                and (cond is None or _value_ok(node.value, cond))
            ):
                ids.append(stop)
            return ids
        ids, complete = self._allowed_numeric(ci, text, cond)
        if text == "" and cc.has_na and cond is None:
            ids.append(self.missing[0])
        if complete:
            ids.append(stop)
        return ids

    def _advance(self, i, tok, order, rows, forced, pos, text, node, done) -> None:  # noqa: ANN001
        ci = order[pos[i]]
        name = self.columns[ci].name
        cc = self.codec.codecs[name]
        last = pos[i] == len(order) - 1
        stop = self.eos if last else self.sep[0]
        after = [] if last else list(self.sep[1:]) + list(self.heads[order[pos[i] + 1]])

        def finish(value: Any, rest: list[int]) -> None:
            rows[i][name] = value
            forced[i] = rest
            text[i] = ""
            pos[i] += 1
            if last and not rest:
                done[i] = True

        if cc.mode == "cat":
            cur = node[i]
            if tok == stop and cur is not None and cur.terminal and tok not in cur.children:
                finish(cur.value, after)
                return
            child = cur.children[tok] if cur is not None else None
            node[i] = child
            if child is not None and child.terminal and not child.children:
                finish(child.value, [stop] + after)
            return
        if text[i] == "" and cc.has_na and tok == self.missing[0] and tok not in self.char_of:
            finish(None, list(self.missing[1:]) + [stop] + after)
            return
        if tok == stop and tok not in self.char_of:
            finish(float(text[i]), after)
            return
        text[i] += self.char_of[tok]


def _feasible(prefix: str, lo: float, hi: float, prec: int) -> bool:
    """Whether ``prefix`` extends to a number in [lo, hi] with at most ``prec`` decimals."""
    neg = prefix.startswith("-")
    body = prefix[1:] if neg else prefix
    if body.count(".") > 1 or "-" in body:
        return False
    if "." in body:
        if prec == 0:
            return False
        ip, fp = body.split(".")
        if ip == "" or len(fp) > prec:
            return False
    else:
        ip, fp = body, None
    if len(ip) > 1 and ip[0] == "0":
        return False
    if ip == "":
        return (lo < 0) if neg else (hi >= 0)
    unit = 10.0 ** (-prec)
    spans = []  # closed ranges of magnitudes reachable from this prefix
    if fp is None:
        base = int(ip)
        for k in range(16):
            spans.append((base * 10**k, (base + 1) * 10**k - unit))
            if base == 0:
                break
    else:
        v = float(f"{ip}.{fp}" if fp else ip)
        spans.append((v, v + 10.0 ** (-len(fp)) - unit if len(fp) < prec else v))
    for a, b in spans:
        x0, x1 = (-b, -a) if neg else (a, b)
        if x1 >= lo - 1e-9 and x0 <= hi + 1e-9:
            return True
    return False


def _complete(text: str, lo: float, hi: float, prec: int) -> bool:
    if text in ("", "-") or text.endswith("."):
        return False
    try:
        v = float(text)
    except ValueError:
        return False
    return lo - 1e-12 <= v <= hi + 1e-12


def _value_ok(v: Any, cond: Condition) -> bool:
    if v is None:
        return False
    if cond.values is not None:
        return any(v == a or str(v) == str(a) for a in cond.values)
    try:
        return cond.low <= float(v) <= cond.high
    except (TypeError, ValueError):
        return False


def _subtree_ok(node: _Trie, cond: Condition | None) -> bool:
    if cond is None:
        return True
    if node.terminal and _value_ok(node.value, cond):
        return True
    return any(_subtree_ok(ch, cond) for ch in node.children.values())
