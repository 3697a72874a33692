"""Drawing a block of patients: static attributes, then constrained timelines, then tables.

The static attributes are drawn as slots (conditioned columns first, as a table row is); the
timeline follows under :class:`._policy.TimelinePolicy`, whose constraints come from those
attributes (end of follow-up, sex, age, presence flags) and from the code mapping.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.errors import ConditionError
from healthsynth.generators._conditions import resolve_conditions
from healthsynth.generators.timeline_lm._codec import UNSAID, TimelineCodec, flag_name

__all__ = ["draw_patients", "find_item", "resolve", "sample_block", "timeline_masks"]


def resolve(
    codec: TimelineCodec, key: str, conditions: Mapping[str, Any] | None
) -> tuple[dict[str, Any], list[int]]:
    """Static conditions (checked against the static schema) and the items ``has`` asks for."""
    conds = dict(conditions or {})
    has = conds.pop("has", None)
    required: list[int] = []
    if has is not None:
        wanted = list(has) if isinstance(has, (list, tuple, set)) else [has]
        for w in wanted:
            idx = find_item(codec, str(w))
            if idx not in codec.flag_items:
                raise ConditionError(
                    f"item '{w}' has no presence flag (only the {len(codec.flag_items)} most "
                    "frequent items have one); raise max_flags when fitting"
                )
            required.append(idx)
            conds[flag_name(*codec.items[idx])] = 1
    for col in codec.flag_columns:  # flags nobody asked about say nothing
        conds.setdefault(col, UNSAID)
    if key in conds:
        raise ConditionError(f"condition column '{key}' is the patient ID, which is generated")
    resolved = resolve_conditions(conds, codec.static_schema)
    return resolved, required


def find_item(codec: TimelineCodec, name: str) -> int:
    """The index of the item called ``name`` (or ``table/name``)."""
    for i, (table, item) in enumerate(codec.items):
        if name in (item, f"{table}/{item}"):
            return i
    known = ", ".join(i for _, i in codec.items[:30])
    raise ConditionError(f"'has' names the item '{name}', which never occurs; items: {known}")


def timeline_masks(
    codec: TimelineCodec, code_map: Any, structure: Any = None, calibration: Any = None
) -> Any:
    """The decoding masks of ``codec`` under a code mapping, structure and calibration.

    Each may be ``None``; ``calibration`` is ``(item offsets, END offset)``.
    """
    from healthsynth.generators.timeline_lm._policy import TimelineMasks

    sexes: list[tuple[bool, bool]] = []
    ages: list[tuple[float, float]] = []
    ranges: list[tuple[float | None, float | None]] = []
    for table, item in codec.items:
        entry = code_map.get(table, item) if code_map is not None else None
        if entry is None:
            sexes.append((True, True))
            ages.append((0.0, math.inf))
            ranges.append((None, None))
        else:
            s = entry.sexes()
            sexes.append(("female" in s, "male" in s))
            ages.append(entry.ages())
            ranges.append((entry.low, entry.high))
    return TimelineMasks(
        codec,
        item_sexes=sexes,
        item_ages=ages,
        value_ranges=ranges,
        structure=structure,
        item_bias=None if calibration is None else calibration[0],
        end_bias=0.0 if calibration is None else calibration[1],
    )


def _constraints(
    codec: TimelineCodec,
    roles: Mapping[str, Any],
    static_df: pd.DataFrame,
    required_items: list[int],
    masks: Any = None,
) -> Any:
    """What each patient's timeline must respect, from its static attributes."""
    from healthsynth.generators.timeline_lm._policy import Constraints

    m, n_items = len(static_df), len(codec.items)
    end = np.full(m, np.inf)
    if roles.get("end"):
        end = pd.to_numeric(static_df[roles["end"]], errors="coerce").to_numpy(float)
        end = np.where(np.isfinite(end), end, np.inf)
    # an item whose presence flag is "no" is never emitted (in training such a patient never
    # has it); the items a cohort condition asks for must occur before the timeline ends
    required = np.zeros((m, n_items), bool)
    forbidden = np.zeros((m, n_items), bool)
    for i, col in zip(codec.flag_items, codec.flag_columns, strict=True):
        flag = pd.to_numeric(static_df[col], errors="coerce").to_numpy(float)
        forbidden[:, i] = flag == 0
    required[:, required_items] = True
    structure = getattr(masks, "structure", None)
    if structure is not None:  # items every training patient has
        required[:, structure.always] = True
    sex = np.full(m, -1)
    if roles.get("sex"):
        first = static_df[roles["sex"]].astype(str).str.strip().str.lower().str[:1]
        sex = np.where(first == "f", 0, np.where(first == "m", 1, -1))
    age = np.full(m, np.nan)
    if roles.get("age"):
        age = pd.to_numeric(static_df[roles["age"]], errors="coerce").to_numpy(float)
    return Constraints(end=end, required=required, forbidden=forbidden, sex=sex, age=age)


def _items_of(codec: TimelineCodec, tokens: np.ndarray, states: np.ndarray) -> list[int]:
    """The items of one decoded timeline (plain or joint item tokens)."""
    at = (states == codec.S_ITEM) & (tokens >= codec.item0)
    at &= tokens < codec.item0 + codec.n_item_tokens
    return codec.token_item[tokens[at] - codec.item0].tolist()


def sample_block(
    model: Any,
    codec: TimelineCodec,
    masks: Any,
    *,
    roles: Mapping[str, Any],
    code_map: Any,
    m: int,
    conds: dict[str, Any],
    required_items: list[int],
    draws: np.random.Generator,
    rng: np.random.Generator,
    temperature: float,
    workers: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Draw ``m`` patients: their static table, their events, and whether each met ``has``.

    ``draws`` draws the tokens; ``rng`` the values within a token's interval; ``workers``
    threads share the decoding (the patients do not depend on it).
    """
    from healthsynth.generators._lm._slots import sample_slots, slot_order
    from healthsynth.generators.timeline_lm._output import decode_events
    from healthsynth.generators.timeline_lm._policy import sample_timelines

    sc = codec.static
    cond_cols = [i for i, c in enumerate(sc.columns) if c.name in conds]
    slot_masks, fine_tables = sc.slot_masks(conds)
    static_local, _ = sample_slots(
        model,
        sc,
        m,
        order=slot_order(sc, cond_cols),
        masks=slot_masks,
        fine_tables=fine_tables,
        rng=draws,
        temperature=temperature,
    )
    static_df = sc.decode(static_local, rng, conds)
    tokens, states, days, _met = sample_timelines(
        model,
        masks,
        static_local=static_local,
        constraints=_constraints(codec, roles, static_df, required_items, masks),
        draws=draws,
        rng=rng,
        temperature=temperature,
        workers=workers,
    )
    ok = np.ones(m, bool)
    if required_items:
        ok = np.array(
            [
                set(required_items) <= set(_items_of(codec, t, st))
                for t, st in zip(tokens, states, strict=True)
            ]
        )
    events = decode_events(codec, code_map, tokens, states, days, rng)
    patients = static_df.drop(columns=codec.flag_columns)
    return patients, events, ok


class _Numbered:
    """Blocks of drawn patients, numbered in the order they are added (from ``id_start + 1``)."""

    def __init__(self, id_start: int) -> None:
        self.id_start, self.got = id_start, 0
        self.patients: list[pd.DataFrame] = []
        self.events: list[pd.DataFrame] = []

    def add(self, p: pd.DataFrame, ev: pd.DataFrame, keep: np.ndarray) -> None:
        """Keep the patients at positions ``keep`` of block ``p`` and their events ``ev``."""
        if not len(keep):
            return
        kept_ids = set(p.index[keep].tolist())
        p = p.iloc[keep]
        ev = ev[ev["_row"].isin(kept_ids)]
        first = self.id_start + self.got + 1
        new_id = {r: first + j for j, r in enumerate(p.index.tolist())}
        p = p.reset_index(drop=True)
        p.insert(0, "_id", [first + j for j in range(len(p))])
        self.patients.append(p)
        self.events.append(ev.assign(_id=ev["_row"].map(new_id)))
        self.got += len(keep)

    def tables(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        return (
            pd.concat(self.patients, ignore_index=True),
            pd.concat(self.events, ignore_index=True),
        )


def draw_patients(
    gen: Any,
    n: int,
    *,
    conditions: Mapping[str, Any] | None,
    static_conds: dict[str, Any],
    required_items: list[int],
    seed: int | None,
    id_start: int,
    workers: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` patients of the fitted ``gen`` (patients and events tables, numbered in order).

    Patients are drawn in blocks of ``gen.sample_batch_size``, each block with its own random
    streams taken in order from ``seed``, so the patients depend on the seed and the batch
    size only. Without ``has`` conditions the blocks' sizes are known in advance and up to
    ``workers`` blocks are decoded at once, one thread each (a block's Python-level steps then
    overlap another block's array work); a single block shares its rows among the threads
    instead. With ``has``, blocks are drawn one after the other, each as large as the
    acceptance rate so far asks for.
    """
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(seed)
    bs = gen.sample_batch_size
    masks = gen._masks()  # built once, before any thread needs it

    def block(m: int, streams: np.ndarray, threads: int) -> Any:
        return sample_block(
            gen.model_,
            gen.codec_,
            masks,
            roles=gen.template_["roles"],
            code_map=gen.code_map_,
            m=m,
            conds=static_conds,
            required_items=required_items,
            draws=np.random.default_rng(int(streams[1])),
            rng=np.random.default_rng(int(streams[0])),
            temperature=float(gen.temperature),
            workers=threads,
        )

    out = _Numbered(id_start)
    if required_items:
        tries = drawn = accepted = 0
        while out.got < n:
            tries += 1
            need = n - out.got
            if drawn:  # enough for the acceptance rate seen so far (at least 5 %)
                need = math.ceil(1.2 * need * drawn / max(accepted, 0.05 * drawn))
            m = min(bs, max(need, 1))
            p, ev, ok = block(m, rng.integers(0, 2**63 - 1, size=2), workers)
            drawn, accepted = drawn + m, accepted + int(ok.sum())
            out.add(p, ev, np.flatnonzero(ok)[: n - out.got])
            if tries > 50 and out.got < n:
                raise ConditionError(
                    f"only {out.got} of {n} patients met the conditions "
                    f"{dict(conditions or {})} after {tries} batches; the model rarely "
                    "generates such patients"
                )
        return out.tables()
    sizes = [min(bs, n - s) for s in range(0, n, bs)]
    streams = rng.integers(0, 2**63 - 1, size=(len(sizes), 2))
    outer = max(1, min(workers, len(sizes)))
    with ThreadPoolExecutor(outer) as pool:
        jobs = [
            pool.submit(block, m, streams[k], workers if outer == 1 else 1)
            for k, m in enumerate(sizes)
        ]
        for job in jobs:
            p, ev, _ = job.result()
            out.add(p, ev, np.arange(len(p)))
    return out.tables()
