"""The from-scratch causal transformer on slot tokens: building, training and constrained sampling.

The model is a stock Hugging Face GPT-2 (saved as config.json + model.safetensors). The token
*type* of each position is the marker of the slot predicted next, so the model always knows
which column comes, whatever the order. Training mixes the canonical column order with orders
that move a random subset of columns to the front; sampling with conditions puts the conditioned
columns first and then draws the others from the model's conditional distribution.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812

from healthsynth.generators.tabular_lm._codec import BOS, PAD, TableCodec

__all__ = ["build_model", "sample_tokens", "slot_order", "train_model"]


def build_model(
    codec: TableCodec, *, n_embd: int, n_layer: int, n_head: int, dropout: float, seed: int
) -> Any:
    """A fresh GPT-2 sized for the codec's vocabulary and sequence length."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=codec.vocab_size,
        n_positions=codec.n_slots + 1,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        n_inner=4 * n_embd,
        activation_function="gelu",
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        bos_token_id=BOS,
        eos_token_id=BOS,
        pad_token_id=PAD,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    return model


def slot_order(codec: TableCodec, first_columns: list[int]) -> np.ndarray:
    """Slot order that puts ``first_columns`` first and the rest in canonical order."""
    rest = [c for c in range(len(codec.columns)) if c not in first_columns]
    return np.array([s for c in first_columns + rest for s in codec.column_slots[c]], np.int64)


def _random_orders(
    codec: TableCodec, n: int, perm_prob: float, rng: np.random.Generator
) -> np.ndarray:
    """Per-row slot orders: canonical, or a random subset of columns moved to the front."""
    c = len(codec.columns)
    slot_col = np.asarray(codec.slot_column)
    within = np.zeros(codec.n_slots)
    for slots in codec.column_slots:
        within[slots] = np.arange(len(slots))
    col_key = np.tile(np.arange(c, dtype=float) + c, (n, 1))
    if c > 1 and perm_prob > 0:
        permuted = rng.random(n) < perm_prob
        k = rng.integers(1, c, size=n)  # 1..c-1 columns in front
        ranks = np.argsort(np.argsort(rng.random((n, c)), axis=1), axis=1)
        front = permuted[:, None] & (ranks < k[:, None])
        col_key = np.where(front, ranks.astype(float), col_key)
    slot_key = col_key[:, slot_col] * 4 + within[None, :]
    return np.argsort(slot_key, axis=1, kind="stable")


def _batch_tensors(
    codec: TableCodec, local: np.ndarray, order: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rows = np.arange(len(local))[:, None]
    ordered_local = local[rows, order]
    global_ids = ordered_local + codec.offset[order]
    inputs = np.concatenate([np.full((len(local), 1), BOS), global_ids[:, :-1]], axis=1)
    types = codec.marker[order]
    return (
        torch.from_numpy(inputs.astype(np.int64)),
        torch.from_numpy(types.astype(np.int64)),
        torch.from_numpy(global_ids.astype(np.int64)),
    )


def _slot_range_mask(codec: TableCodec) -> torch.Tensor:
    """(slots, vocab) additive mask: 0 inside a slot's block, -inf elsewhere."""
    mask = torch.full((codec.n_slots, codec.vocab_size), float("-inf"))
    for s in range(codec.n_slots):
        mask[s, codec.offset[s] : codec.offset[s] + codec.slot_size[s]] = 0.0
    return mask


def _loss(
    model: Any, codec: TableCodec, range_mask: torch.Tensor, local: np.ndarray, order: np.ndarray
) -> torch.Tensor:
    inputs, types, labels = _batch_tensors(codec, local, order)
    logits = model(input_ids=inputs, token_type_ids=types).logits
    logits = logits + range_mask[torch.from_numpy(order)]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))


def train_model(
    model: Any,
    codec: TableCodec,
    train_tokens: np.ndarray,
    val_tokens: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    weight_decay: float,
    patience: int,
    perm_prob: float,
    max_time: float | None,
    seed: int,
    privacy_check: Callable[[Any], dict[str, Any]] | None = None,
    privacy_every: int = 5,
    progress: Any = None,
) -> dict[str, Any]:
    """Train in place with early stopping; restore the best weights. Returns the record."""
    rng = np.random.default_rng(seed)
    range_mask = _slot_range_mask(codec)
    n = len(train_tokens)
    steps_per_epoch = max(1, math.ceil(n / batch_size))
    total_steps = steps_per_epoch * epochs
    warmup = max(1, int(0.03 * total_steps))
    opt = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda step: (
            min(1.0, (step + 1) / warmup)
            * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps)))
        ),
    )
    val_order = np.tile(np.arange(codec.n_slots), (len(val_tokens), 1))
    history: list[dict[str, Any]] = []
    best = (math.inf, copy.deepcopy(model.state_dict()), 0)
    privacy_safe = best[1]
    privacy_log: list[dict[str, Any]] = []
    stop_reason = "epochs"
    bad_epochs = 0
    start = time.perf_counter()
    step = 0
    task = progress.add_task("training", total=epochs) if progress is not None else None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for epoch in range(1, epochs + 1):
            best_before_epoch = best
            model.train()
            perm = rng.permutation(n)
            running, seen = 0.0, 0
            for i in range(0, n, batch_size):
                idx = perm[i : i + batch_size]
                order = _random_orders(codec, len(idx), perm_prob, rng)
                loss = _loss(model, codec, range_mask, train_tokens[idx], order)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                step += 1
                running += float(loss.detach()) * len(idx)
                seen += len(idx)
                if max_time is not None and time.perf_counter() - start > max_time:
                    break
            val = evaluate_loss(model, codec, val_tokens, val_order, range_mask)
            entry = {
                "epoch": epoch,
                "train_nll_per_token": running / max(seen, 1),
                "val_nll_per_token": val,
                "seconds": round(time.perf_counter() - start, 3),
            }
            history.append(entry)
            if progress is not None:
                progress.update(task, advance=1, description=f"training (val loss {val:.3f})")
            if val < best[0] - 1e-4:
                best = (val, copy.deepcopy(model.state_dict()), epoch)
                bad_epochs = 0
            else:
                bad_epochs += 1
            if privacy_check is not None and (epoch % privacy_every == 0):
                result = privacy_check(model)
                model.train()
                result["epoch"] = epoch
                privacy_log.append(result)
                if not result["passed"]:
                    stop_reason = "privacy"
                    break
                privacy_safe = copy.deepcopy(model.state_dict())
            if bad_epochs >= patience:
                stop_reason = "early_stopping"
                break
            if max_time is not None and time.perf_counter() - start > max_time:
                stop_reason = "max_time"
                break
    if stop_reason == "privacy":
        # the best-loss weights may be past the point where the check failed: keep the last
        # weights that passed unless the best ones are older than that
        last_pass = privacy_log[-2]["epoch"] if len(privacy_log) > 1 else 0
        if best[2] <= last_pass:
            model.load_state_dict(best[1])
            kept = best[2]
        elif last_pass > 0:
            model.load_state_dict(privacy_safe)
            kept = last_pass
        elif best_before_epoch[2] > 0:
            # the first check failed: nothing was verified, so keep the best weights from
            # before the failing epoch (never the random initialisation)
            model.load_state_dict(best_before_epoch[1])
            kept = best_before_epoch[2]
        else:
            kept = len(history)
    else:
        model.load_state_dict(best[1])
        kept = best[2]
    model.eval()
    return {
        "epochs_run": len(history),
        "epochs_planned": epochs,
        "best_epoch": kept,
        "best_val_nll_per_token": best[0],
        "stop_reason": stop_reason,
        "steps": step,
        "history": history,
        "privacy_checks": privacy_log,
        "train_seconds": round(time.perf_counter() - start, 3),
    }


@torch.inference_mode()
def evaluate_loss(
    model: Any,
    codec: TableCodec,
    tokens: np.ndarray,
    order: np.ndarray,
    range_mask: torch.Tensor,
    batch_size: int = 1024,
) -> float:
    """Mean negative log-likelihood per token (nats)."""
    model.eval()
    total = 0.0
    for i in range(0, len(tokens), batch_size):
        loss = _loss(
            model, codec, range_mask, tokens[i : i + batch_size], order[i : i + batch_size]
        )
        total += float(loss) * len(tokens[i : i + batch_size])
    model.train()
    return total / max(len(tokens), 1)


@torch.inference_mode()
def sample_tokens(
    model: Any,
    codec: TableCodec,
    n: int,
    *,
    order: np.ndarray,
    masks: list[np.ndarray],
    fine_tables: dict[int, np.ndarray],
    generator: torch.Generator,
    temperature: float = 1.0,
    constrained_slots: set[int] | None = None,
    rules: Any = None,
    rule_state: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` rows of local tokens (canonical slot order) with a KV cache.

    Returns the tokens and, per row, the log-probability the model gave to the constrained
    slots' allowed tokens (0 when nothing was constrained) — a measure of how plausible the
    conditions are under the model. ``rules`` (a ``RuleDecoder``) narrows each step's tokens
    further, recording what it decided in ``rule_state``.
    """
    model.eval()
    transformer = model.transformer
    weight = model.lm_head.weight
    constrained_slots = constrained_slots or set()
    out = np.zeros((n, codec.n_slots), np.int64)
    cond_logp = torch.zeros(n)
    prev = torch.full((n, 1), BOS, dtype=torch.long)
    past = None
    slot_masks = [torch.from_numpy(m) for m in masks]
    tables = {s: torch.from_numpy(t) for s, t in fine_tables.items()}
    coarse_of = {s: s - 1 for s in tables}
    chosen: dict[int, torch.Tensor] = {}
    cache_arg = _cache_argument(transformer)
    for slot in order.tolist():
        types = torch.full((n, 1), int(codec.marker[slot]), dtype=torch.long)
        res = transformer(input_ids=prev, token_type_ids=types, use_cache=True, **{cache_arg: past})
        past = _returned_cache(res)
        h = res.last_hidden_state[:, -1]
        off, size = int(codec.offset[slot]), codec.slot_size[slot]
        logits = h @ weight[off : off + size].T
        if temperature != 1.0:
            logits = logits / temperature
        if slot in tables:
            allowed = tables[slot][chosen[coarse_of[slot]]] & slot_masks[slot]
        else:
            allowed = slot_masks[slot].expand(n, size)
        if rules is not None:
            allowed = rules.mask(slot, rule_state, allowed)
        masked = logits.masked_fill(~allowed, float("-inf"))
        if slot in constrained_slots:
            cond_logp += torch.logsumexp(masked, dim=1) - torch.logsumexp(logits, dim=1)
        probs = torch.softmax(masked, dim=1)
        pick = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        chosen[slot] = pick
        if rules is not None:
            rules.record(slot, rule_state, pick)
        out[:, slot] = pick.numpy()
        prev = (pick + off).unsqueeze(1)
    return out, cond_logp.numpy()


def _cache_argument(module: Any) -> str:
    """Name of the KV-cache argument (``cache`` in newer transformers, else ``past_key_values``)."""
    import inspect

    params = inspect.signature(module.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _returned_cache(output: Any) -> Any:
    """The KV cache a forward pass returned (``cache`` in newer transformers)."""
    return output["cache"] if "cache" in output else output.past_key_values
