"""Training the timeline transformer and sampling valid timelines from it.

The model is a stock Hugging Face GPT-2 (config.json + model.safetensors). Each position's token
type is the marker of its *state* (which block of the vocabulary comes next), and the loss is
taken over that block only. Sampling runs all patients of a batch in lock step with a KV cache,
drops finished patients from the cache as it goes, and masks every step's logits so that each
timeline is valid:

* grammar: only the tokens of the current state's block;
* time: a start day or gap may not pass the patient's end of follow-up (nothing after death);
  the value of a time token is drawn as soon as it is chosen, so the check is exact;
* flags: an item whose presence flag is "no" is never emitted; ``END`` waits until every item a
  cohort condition asks for has occurred;
* clinical codes: items whose code is specific to the other sex, or to an age band the patient
  is outside of at that moment, are never emitted;
* lab values: value tokens outside the plausible range of the item are never emitted, and
  decoded values are clipped to it.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812

from healthsynth.generators.tabular_lm._codec import BOS, PAD
from healthsynth.generators.tabular_lm._native import _random_orders
from healthsynth.generators.timeline_lm._codec import TimelineCodec

__all__ = ["Constraints", "build_model", "sample_timelines", "train_model"]


def build_model(
    codec: TimelineCodec, *, n_embd: int, n_layer: int, n_head: int, dropout: float, seed: int
) -> Any:
    """A fresh GPT-2 sized for the codec's vocabulary and longest sequence."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=codec.vocab_size,
        n_positions=codec.static.n_slots + codec.max_tokens + 1,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        n_inner=4 * n_embd,
        activation_function="gelu",
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        bos_token_id=BOS,
        eos_token_id=codec.END,
        pad_token_id=PAD,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    return model


@dataclass
class _Data:
    static: np.ndarray  # (patients, static slots) local tokens
    tokens: list[np.ndarray]
    states: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.tokens)


def _batches(data: _Data, token_budget: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Patients grouped by length so that a batch holds about ``token_budget`` tokens."""
    lengths = np.array([len(t) for t in data.tokens]) + data.static.shape[1] + 1
    if rng is not None:
        noise = rng.random(len(lengths))  # shuffle within equal lengths
        order = np.lexsort((noise, lengths))
    else:
        order = np.argsort(lengths, kind="stable")
    out: list[np.ndarray] = []
    cur: list[int] = []
    longest = 0
    for i in order:
        longest = max(longest, lengths[i])
        if cur and longest * (len(cur) + 1) > token_budget:
            out.append(np.array(cur))
            cur, longest = [], lengths[i]
        cur.append(i)
    if cur:
        out.append(np.array(cur))
    if rng is not None:
        rng.shuffle(out)
    return out


def _batch_tensors(
    codec: TimelineCodec,
    data: _Data,
    idx: np.ndarray,
    static_order: np.ndarray,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    sc = codec.static
    s = sc.n_slots
    rows = np.arange(len(idx))[:, None]
    static_ids = data.static[idx][rows, static_order] + sc.offset[static_order]
    length = s + max(len(data.tokens[i]) for i in idx)
    labels = np.full((len(idx), length), -100, np.int64)
    states = np.zeros((len(idx), length), np.int64)
    labels[:, :s] = static_ids
    states[:, :s] = static_order
    for r, i in enumerate(idx):
        t = data.tokens[i]
        labels[r, s : s + len(t)] = t
        states[r, s : s + len(t)] = data.states[i]
    # positions past a timeline's end are fed END: they only follow real tokens (causal
    # attention), and their labels are ignored
    inputs = np.concatenate(
        [np.full((len(idx), 1), BOS), np.where(labels[:, :-1] < 0, codec.END, labels[:, :-1])],
        axis=1,
    )
    types = codec.state_marker[states]
    return (
        torch.from_numpy(inputs),
        torch.from_numpy(types),
        torch.from_numpy(labels),
        torch.from_numpy(states),
    )


def _loss(
    model: Any,
    codec: TimelineCodec,
    state_mask: torch.Tensor,
    data: _Data,
    idx: np.ndarray,
    order: np.ndarray,
) -> tuple[torch.Tensor, int]:
    inputs, types, labels, states = _batch_tensors(codec, data, idx, order)
    logits = model(input_ids=inputs, token_type_ids=types).logits
    keep = labels >= 0
    logits = logits[keep]
    logits = logits.masked_fill(~state_mask[states[keep]], float("-inf"))
    return F.cross_entropy(logits, labels[keep]), int(keep.sum())


def train_model(
    model: Any,
    codec: TimelineCodec,
    train: _Data,
    val: _Data,
    *,
    epochs: int,
    token_budget: int,
    learning_rate: float,
    weight_decay: float,
    patience: int,
    perm_prob: float,
    max_time: float | None,
    seed: int,
    progress: Any = None,
) -> dict[str, Any]:
    """Train in place with early stopping on validation loss; keep the best weights."""
    rng = np.random.default_rng(seed)
    state_mask = torch.from_numpy(codec.state_mask())
    steps_per_epoch = max(1, len(_batches(train, token_budget, None)))
    # the learning rate warms up, then decays on a cosine to a tenth over the steps training
    # will take: all epochs, or (with a time limit) as many as the first epoch's pace allows
    plan = {"total": steps_per_epoch * epochs}
    warmup = max(1, int(0.03 * plan["total"]))
    opt = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)

    def lr_factor(step: int) -> float:
        total = plan["total"]
        done = min(step, total) / total
        return min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * done)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    history: list[dict[str, Any]] = []
    best = (math.inf, copy.deepcopy(model.state_dict()), 0)
    bad_epochs = 0
    stop_reason = "epochs"
    start = time.perf_counter()
    step = 0
    tokens_seen = 0
    task = progress.add_task("training", total=epochs) if progress is not None else None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for epoch in range(1, epochs + 1):
            model.train()
            running, seen = 0.0, 0
            out_of_time = False
            for idx in _batches(train, token_budget, rng):
                order = _random_orders(codec.static, len(idx), perm_prob, rng)
                loss, n_tok = _loss(model, codec, state_mask, train, idx, order)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                step += 1
                running += float(loss.detach()) * n_tok
                seen += n_tok
                if max_time is not None and time.perf_counter() - start > max_time:
                    out_of_time = True
                    break
            tokens_seen += seen
            if epoch == 1 and max_time is not None and not out_of_time:
                pace = (time.perf_counter() - start) / steps_per_epoch
                plan["total"] = max(step + 1, min(plan["total"], int(0.97 * max_time / pace)))
            val_loss = evaluate_loss(model, codec, val, token_budget, state_mask)
            history.append(
                {
                    "epoch": epoch,
                    "train_nll_per_token": running / max(seen, 1),
                    "val_nll_per_token": val_loss,
                    "seconds": round(time.perf_counter() - start, 3),
                }
            )
            if progress is not None:
                progress.update(task, advance=1, description=f"training (val loss {val_loss:.3f})")
            if val_loss < best[0] - 1e-4:
                best = (val_loss, copy.deepcopy(model.state_dict()), epoch)
                bad_epochs = 0
            else:
                bad_epochs += 1
            if bad_epochs >= patience:
                stop_reason = "early_stopping"
                break
            if out_of_time:
                stop_reason = "max_time"
                break
    model.load_state_dict(best[1])
    model.eval()
    seconds = time.perf_counter() - start
    return {
        "epochs_run": len(history),
        "epochs_planned": epochs,
        "best_epoch": best[2],
        "best_val_nll_per_token": best[0],
        "stop_reason": stop_reason,
        "steps": step,
        "tokens_seen": tokens_seen,
        "tokens_per_second": round(tokens_seen / max(seconds, 1e-9), 1),
        "history": history,
        "train_seconds": round(seconds, 3),
    }


@torch.inference_mode()
def evaluate_loss(
    model: Any, codec: TimelineCodec, data: _Data, token_budget: int, state_mask: torch.Tensor
) -> float:
    """Mean negative log-likelihood per token (nats), static slots in canonical order."""
    model.eval()
    total, count = 0.0, 0
    for idx in _batches(data, token_budget, None):
        order = np.tile(np.arange(codec.static.n_slots), (len(idx), 1))
        loss, n_tok = _loss(model, codec, state_mask, data, idx, order)
        total += float(loss) * n_tok
        count += n_tok
    model.train()
    return total / max(count, 1)


@dataclass
class Constraints:
    """What the sampler must respect for each patient of a batch (all arrays per patient).

    ``end``: latest allowed event day (inf when unknown); ``required``/``forbidden``: per item,
    must occur / may not occur; ``sex``: 0 female, 1 male, -1 unknown; ``age``: age in years at
    day 0 (NaN when unknown).
    """

    end: np.ndarray
    required: np.ndarray  # (n, items) bool
    forbidden: np.ndarray  # (n, items) bool
    sex: np.ndarray
    age: np.ndarray


class _Sampler:
    """Precomputed masks for constrained decoding of one codec."""

    def __init__(
        self,
        codec: TimelineCodec,
        *,
        item_sexes: list[tuple[bool, bool]],
        item_ages: list[tuple[float, float]],
        value_ranges: list[tuple[float | None, float | None]],
    ) -> None:
        self.codec = codec
        c = codec
        base = torch.from_numpy(c.state_mask())
        # rows of the mask table: one per state, plus one per (fine state, coarse token)
        rows = [base]
        self.fine_row: dict[int, int] = {}
        n_rows = base.shape[0]
        fine_specs: list[tuple[int, int, np.ndarray]] = []  # fine state, its block, allowed table
        fine_specs.append((c.S_START_F, c.start_f, c.start.fine_table()))
        fine_specs.append((c.S_GAP_F, c.gap_f, c.gap.fine_table()))
        self.value_ok0: list[np.ndarray | None] = []
        for i, num in enumerate(c.values):
            if num is None:
                self.value_ok0.append(None)
                continue
            low, high = value_ranges[i]
            ok0, ok1 = num.within(low, high)
            self.value_ok0.append(ok0)
            if num.two:
                assert ok1 is not None
                fine_specs.append((c.S_VAL_F[i], c.val_f[i], ok1))
        for state, block, table in fine_specs:
            k, f = table.shape
            t = torch.zeros((k, c.vocab_size), dtype=torch.bool)
            t[:, block : block + f] = torch.from_numpy(table)
            self.fine_row[state] = n_rows
            rows.append(t)
            n_rows += k
        # plausible value ranges on coarse value tokens
        for i, allowed0 in enumerate(self.value_ok0):
            if allowed0 is not None:
                s = c.S_VAL_C[i]
                base[s, c.val_c[i] : c.val_c[i] + len(allowed0)] &= torch.from_numpy(allowed0)
        self.table = torch.cat(rows, dim=0)
        # state -> row in the table (fine states are offset by the chosen coarse token)
        self.row_base = torch.arange(c.n_states)
        self.is_fine = torch.zeros(c.n_states, dtype=torch.bool)
        self.block_start = torch.zeros(c.n_states, dtype=torch.long)
        for state, row in self.fine_row.items():
            self.row_base[state] = row
            self.is_fine[state] = True
        for s, (a, _) in enumerate(c.state_blocks()):
            self.block_start[s] = a
        self.marker = torch.from_numpy(c.state_marker)
        self.item_female = torch.tensor([s[0] for s in item_sexes])
        self.item_male = torch.tensor([s[1] for s in item_sexes])
        self.item_age_lo = torch.tensor([a[0] for a in item_ages], dtype=torch.float64)
        self.item_age_hi = torch.tensor([a[1] for a in item_ages], dtype=torch.float64)
        # time lower/upper bounds per token of the start and gap blocks
        self.start_lb0 = torch.from_numpy(c.start.lb0)
        self.gap_lb0 = torch.from_numpy(c.gap.lb0)
        self.start_lb1 = torch.from_numpy(c.start.lb1)
        self.start_ub1 = torch.from_numpy(c.start.ub1)
        self.gap_lb1 = torch.from_numpy(c.gap.lb1)
        self.gap_ub1 = torch.from_numpy(c.gap.ub1)
        self.integer_days = c.state["time_precision"] == 0
        self.has_val = torch.tensor([v is not None for v in c.values], dtype=torch.bool)
        self.two_val = torch.tensor([v is not None and v.two for v in c.values], dtype=torch.bool)
        self.val_c_state = torch.tensor(c.S_VAL_C, dtype=torch.long)
        self.val_f_state = torch.tensor(c.S_VAL_F, dtype=torch.long)


@torch.inference_mode()
def sample_timelines(
    model: Any,
    sampler: _Sampler,
    *,
    static_local: np.ndarray,
    constraints: Constraints,
    generator: torch.Generator,
    rng: np.random.Generator,
    temperature: float = 1.0,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Generate the timelines of patients whose static tokens are already drawn.

    Returns, per patient: the token array, the state array and the event days (one per event),
    and whether each patient met its required items.
    """
    c = sampler.codec
    sc = c.static
    n = len(static_local)
    weight = model.lm_head.weight
    # feed BOS and the static prefix (canonical order) in one pass
    order = np.arange(sc.n_slots)
    prefix = static_local[:, order] + sc.offset[order]
    inputs = torch.from_numpy(
        np.concatenate([np.full((n, 1), BOS), prefix], axis=1).astype(np.int64)
    )
    types = torch.from_numpy(
        np.concatenate([sc.marker[order], [c.state_marker[c.S_START_C]]]).astype(np.int64)
    ).expand(n, -1)
    decoder = _KVDecoder(model, n, sc.n_slots + 1 + c.max_tokens)
    h = decoder.step(inputs, types.contiguous())
    buf = torch.arange(n)  # row of the KV buffer of each patient still generating
    alive = torch.arange(n)  # original row of each row still in the batch
    state = torch.full((n,), c.S_START_C, dtype=torch.long)
    prev_coarse = torch.zeros(n, dtype=torch.long)
    t_now = torch.zeros(n, dtype=torch.float64)
    end = torch.from_numpy(np.asarray(constraints.end, np.float64))
    required = torch.from_numpy(constraints.required.copy())
    forbidden = torch.from_numpy(constraints.forbidden)
    sex = torch.from_numpy(np.asarray(constraints.sex, np.int64))
    age = torch.from_numpy(np.asarray(constraints.age, np.float64))
    item_sex_ok = torch.ones((n, len(c.items)), dtype=torch.bool)
    item_sex_ok[sex == 0] &= sampler.item_female
    item_sex_ok[sex == 1] &= sampler.item_male
    static_item_ok = item_sex_ok & ~forbidden
    required &= static_item_ok
    log: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    n_items = len(c.items)
    it0 = c.item0
    for step in range(c.max_tokens):
        rows = alive
        logits = (h @ weight.T).float()
        if temperature != 1.0:
            logits = logits / temperature
        row_idx = sampler.row_base[state] + torch.where(sampler.is_fine[state], prev_coarse, 0)
        allowed = sampler.table[row_idx].clone()
        # items: flags, sex, age at this moment
        age_now = age[rows] + t_now / 365.25
        age_ok = (age_now[:, None] >= sampler.item_age_lo[None, :]) & (
            age_now[:, None] <= sampler.item_age_hi[None, :]
        )
        age_ok |= torch.isnan(age_now)[:, None]
        item_ok = static_item_ok[rows] & age_ok
        allowed[:, it0 : it0 + n_items] &= item_ok
        # a patient who may emit no item any more can only end
        at_time = (state == c.S_START_C) | (state == c.S_GAP_C)
        no_item = at_time & ~item_ok.any(dim=1)
        if no_item.any():
            allowed[no_item] = False
            allowed[no_item, c.END] = True
        # END waits for required items, and comes when the length runs out
        pending = required[rows].any(dim=1)
        allowed[:, c.END] &= ~pending
        room = c.max_tokens - step
        if room <= 6:  # no room for another full event
            at_time = (state == c.S_START_C) | (state == c.S_GAP_C)
            allowed[at_time] = False
            allowed[at_time, c.END] = True
        # time: a start day or gap must not pass the end of follow-up
        remaining = end[rows] - t_now
        in_start_c = state == c.S_START_C
        in_gap_c = state == c.S_GAP_C
        if in_start_c.any():
            ok = sampler.start_lb0[None, :] <= end[rows][:, None]
            blk = allowed[:, c.start_c : c.start_c + ok.shape[1]]
            blk &= ok | ~in_start_c[:, None]
        if in_gap_c.any():
            ok = sampler.gap_lb0[None, :] <= remaining[:, None]
            blk = allowed[:, c.gap_c : c.gap_c + ok.shape[1]]
            blk &= ok | ~in_gap_c[:, None]
        for f_state, lb1, block, limit in (
            (c.S_START_F, sampler.start_lb1, c.start_f, end[rows]),
            (c.S_GAP_F, sampler.gap_lb1, c.gap_f, remaining),
        ):
            in_f = state == f_state
            if in_f.any():
                lb = lb1[prev_coarse.clamp(max=lb1.shape[0] - 1)]
                blk = allowed[:, block : block + lb.shape[1]]
                blk &= (lb <= limit[:, None]) | ~in_f[:, None]
        # a row with nothing left to do ends (its unmet requirements are reported)
        stuck = ~allowed.any(dim=1)
        if stuck.any():
            allowed[stuck, c.END] = True
        masked = logits.masked_fill(~allowed, float("-inf"))
        # Gumbel-max: the same draw as multinomial(softmax(masked)), without normalising
        u = torch.rand(masked.shape, generator=generator).clamp_(min=1e-12)
        pick = torch.argmax(masked - torch.log(-torch.log(u)), dim=1)
        # -- bookkeeping: record, move time, next state --
        pk = pick.numpy()
        st = state.numpy()
        rows_np = rows.numpy()
        local = pick - sampler.block_start[state]
        new_t = t_now.clone()
        is_start_c = (state == c.S_START_C) & (pick != c.END)
        is_gap_c = (state == c.S_GAP_C) & (pick != c.END)
        same = is_gap_c & (pick == c.same_day)
        # the gap block starts with the same-day token: the gap's coarse index is one less
        coarse_local = torch.where(state == c.S_GAP_C, local - 1, local)
        # a start day or gap is drawn as soon as its fine token is known
        draw = torch.zeros(len(rows), dtype=torch.bool)
        lo = torch.zeros(len(rows), dtype=torch.float64)
        hi = torch.zeros(len(rows), dtype=torch.float64)
        for f_state, lb1, ub1, origin in (
            (c.S_START_F, sampler.start_lb1, sampler.start_ub1, None),
            (c.S_GAP_F, sampler.gap_lb1, sampler.gap_ub1, t_now),
        ):
            f = state == f_state
            if not f.any():
                continue
            cc = prev_coarse.clamp(max=lb1.shape[0] - 1)
            ll = local.clamp(min=0, max=lb1.shape[1] - 1)
            a, b = lb1[cc, ll], ub1[cc, ll]
            if origin is not None:
                a, b = a + origin, b + origin
            lo = torch.where(f, a, lo)
            hi = torch.where(f, torch.minimum(b, end[rows]), hi)
            draw |= f
        if draw.any():
            u = torch.from_numpy(rng.random(len(rows)))
            v = lo + u * (hi - lo).clamp(min=0)
            if sampler.integer_days:
                v = torch.maximum(torch.minimum(torch.round(v), torch.floor(hi)), torch.ceil(lo))
            new_t = torch.where(draw, v, new_t)
        # the day of an event is known at its item token
        is_item = state == c.S_ITEM
        item_local = (pick - it0).clamp(min=0, max=max(n_items - 1, 0))
        if is_item.any():
            hit = torch.zeros_like(required)
            hit[rows[is_item], item_local[is_item]] = True
            required &= ~hit
        t_now = new_t
        log.append((rows_np, pk, st, t_now.numpy().copy()))
        # next state
        ended = pick == c.END
        nxt = torch.full_like(state, -1)
        nxt = torch.where(is_start_c, c.S_START_F, nxt)
        nxt = torch.where((state == c.S_START_F) | same | (state == c.S_GAP_F), c.S_ITEM, nxt)
        nxt = torch.where(is_gap_c & ~same, c.S_GAP_F, nxt)
        if n_items and is_item.any():
            iv = sampler.has_val[item_local]
            nxt = torch.where(is_item & iv, sampler.val_c_state[item_local], nxt)
            nxt = torch.where(is_item & ~iv, c.S_GAP_C, nxt)
        if n_items:
            is_val = state >= c.S_VAL_C[0]
            if is_val.any():
                vidx = ((state - c.S_VAL_C[0]) // 2).clamp(min=0, max=n_items - 1)
                coarse_state = ((state - c.S_VAL_C[0]) % 2 == 0) & is_val
                to_fine = coarse_state & sampler.two_val[vidx]
                nxt = torch.where(to_fine, sampler.val_f_state[vidx], nxt)
                nxt = torch.where(is_val & ~to_fine, c.S_GAP_C, nxt)
        prev_coarse = torch.where(sampler.is_fine[nxt.clamp(min=0)], coarse_local, prev_coarse)
        keep = ~(ended | (nxt < 0))
        if not keep.any():
            break
        if not keep.all():
            sel = torch.nonzero(keep).squeeze(1)
            alive, buf = alive[sel], buf[sel]
            state, prev_coarse, t_now = nxt[sel], prev_coarse[sel], t_now[sel]
            pick = pick[sel]
            if len(buf) < 0.7 * decoder.rows:  # drop finished patients from the cache
                decoder.select(buf)
                buf = torch.arange(len(buf))
        else:
            state = nxt
        types = sampler.marker[state].unsqueeze(1)
        h = decoder.step(pick.unsqueeze(1), types, rows=buf)
    met = ~required.any(dim=1).numpy()
    rows_all = np.concatenate([e[0] for e in log])
    toks_all = np.concatenate([e[1] for e in log])
    st_all = np.concatenate([e[2] for e in log])
    t_all = np.concatenate([e[3] for e in log])
    order = np.argsort(rows_all, kind="stable")  # steps stay in order within a patient
    rows_all, toks_all, st_all, t_all = (
        rows_all[order],
        toks_all[order],
        st_all[order],
        t_all[order],
    )
    bounds = np.searchsorted(rows_all, np.arange(n + 1))
    tokens = [toks_all[bounds[i] : bounds[i + 1]] for i in range(n)]
    states = [st_all[bounds[i] : bounds[i + 1]] for i in range(n)]
    days = [
        t_all[bounds[i] : bounds[i + 1]][st_all[bounds[i] : bounds[i + 1]] == c.S_ITEM]
        for i in range(n)
    ]
    return tokens, states, days, met


class _KVDecoder:
    """Incremental forward pass of a GPT-2 with a preallocated key/value buffer.

    The transformers cache grows by concatenation at every step and copies itself to drop
    rows; on long timelines that copying dominated sampling. Here keys and values are written
    into a buffer sized for the longest sequence, finished rows are dropped only now and then
    (:meth:`select`), and rows that finished in between are computed but ignored.
    """

    def __init__(self, model: Any, rows: int, max_len: int) -> None:
        t = model.transformer
        cfg = model.config
        self.wte, self.wpe, self.blocks, self.ln_f = t.wte, t.wpe, t.h, t.ln_f
        self.n_head = cfg.n_head
        self.d = cfg.n_embd
        self.hd = self.d // self.n_head
        self.rows = rows
        shape = (len(self.blocks), rows, self.n_head, max_len, self.hd)
        self.k = torch.zeros(shape, dtype=self.wte.weight.dtype)
        self.v = torch.zeros(shape, dtype=self.wte.weight.dtype)
        self.pos = 0

    def step(
        self, ids: torch.Tensor, types: torch.Tensor, rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Feed ``ids`` (rows of the buffer, or the given ``rows``); last hidden state per row."""
        if rows is not None and len(rows) != self.rows:
            full_ids = torch.full((self.rows, ids.shape[1]), PAD, dtype=torch.long)
            full_types = torch.full((self.rows, ids.shape[1]), PAD, dtype=torch.long)
            full_ids[rows], full_types[rows] = ids, types
            ids, types = full_ids, full_types
        b, t = ids.shape
        p0, p1 = self.pos, self.pos + t
        x = self.wte(ids) + self.wte(types) + self.wpe.weight[p0:p1][None]
        for layer, block in enumerate(self.blocks):
            a = block.ln_1(x)
            q, k, v = block.attn.c_attn(a).split(self.d, dim=2)
            q = q.view(b, t, self.n_head, self.hd).transpose(1, 2)
            self.k[layer, :, :, p0:p1] = k.view(b, t, self.n_head, self.hd).transpose(1, 2)
            self.v[layer, :, :, p0:p1] = v.view(b, t, self.n_head, self.hd).transpose(1, 2)
            o = F.scaled_dot_product_attention(
                q, self.k[layer, :, :, :p1], self.v[layer, :, :, :p1], is_causal=t > 1
            )
            x = x + block.attn.c_proj(o.transpose(1, 2).reshape(b, t, self.d))
            x = x + block.mlp(block.ln_2(x))
        self.pos = p1
        h = self.ln_f(x[:, -1])
        return h if rows is None or len(rows) == self.rows else h[rows]

    def select(self, rows: torch.Tensor) -> None:
        """Keep only ``rows`` of the buffer."""
        self.k = self.k[:, rows].contiguous()
        self.v = self.v[:, rows].contiguous()
        self.rows = len(rows)
