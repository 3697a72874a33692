"""Prevalence calibration: the share of patients with each item, matched after training.

A model stopped early on a small cohort gets the marginal rate of an item wrong by a few
points, and which way depends on the fit: on ``mgus2`` (1,384 patients) the share of synthetic
patients who die moved by ±0.05 from one training seed to the next, while the validation loss
barely moved (docs/timelines.md). After training, :func:`calibrate` samples patients, compares
each item's prevalence (share of patients with the item at least once) with the training
patients', and moves a per-item offset on the item's logits at the item step by the gap on the
logit scale; a few rounds bring every item close. Sampling then adds the offsets
(:class:`._policy.TimelinePolicy`).

The offsets use one statistic of the real rows, each item's prevalence. Under differential
privacy that statistic is not covered by DP-SGD's guarantee, so calibration is skipped there.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.generators._lm._alloc import release_freed_memory

__all__ = ["calibrate", "item_prevalence"]

#: patients sampled per round (twice the training patients, within these bounds), fewest and
#: most rounds of adjustment, share of an item's logit gap moved per round, largest offset
#: (logits) either way
PATIENTS, ROUNDS, STEP, LIMIT = (500, 2_000), (4, 8), 0.8, 3.0
#: after the fewest rounds, a round's sample is close enough when no item is further from its
#: target than a share in a sample of that size strays with this probability, split over the
#: items (Bonferroni: with many items, some item is always a couple of standard errors off)
NOISE = 0.05
#: patients decoded at once while calibrating
BATCH = 256


def item_prevalence(
    events: pd.DataFrame, key: str, items: Sequence[tuple[str, str]], n_patients: int
) -> np.ndarray:
    """Per item of ``items``: the share of the ``n_patients`` patients with it at least once."""
    index = {ti: i for i, ti in enumerate(items)}
    item = pd.Series(
        [index.get(ti, -1) for ti in zip(events["table"], events["item"], strict=True)],
        index=events.index,
        dtype=np.int64,
    )
    pairs = pd.DataFrame({"p": events[key].to_numpy(), "i": item.to_numpy()})
    pairs = pairs[pairs["i"] >= 0].drop_duplicates()
    counts = np.bincount(pairs["i"].to_numpy(), minlength=len(items))
    return counts / max(n_patients, 1)


def _logit(p: np.ndarray, n: int) -> np.ndarray:
    q = np.clip(p, 0.5 / n, 1 - 0.5 / n)
    return np.log(q / (1 - q))


def calibrate(gen: Any, events: pd.DataFrame, key: str, n_patients: int) -> dict[str, Any]:
    """Fit ``gen.calibration_`` so sampled prevalence matches the training patients'.

    ``gen`` is a fitted :class:`TimelineLM` (its model, codec and masks in place); ``events``
    and ``key`` are the training events and patient column. Two kinds of offset move together:
    the END offset by the log ratio of distinct items per patient (how many kinds of event a
    timeline has), each item's offset by its prevalence gap on the logit scale (which of them).
    Returns what the training record says: patients per round, rounds, the largest gap before
    and after, and the offsets' sizes.
    """
    items = gen.codec_.items
    target = item_prevalence(events, key, items, n_patients)
    n_cal = int(np.clip(2 * n_patients, *PATIENTS))
    started = time.perf_counter()
    # the fit's peak memory: training's freed heap goes back first, and patients are decoded
    # in smaller batches than sample()'s default (their key/value buffers are smaller)
    release_freed_memory()
    batch = gen.sample_batch_size
    gen.sample_batch_size = min(batch, BATCH)
    try:
        bias, end, gaps = _rounds(gen, target, n_patients, n_cal)
    finally:
        gen.sample_batch_size = batch
    gen.calibration_, gen.sampler_ = (bias, end), None
    return {
        "patients_per_round": n_cal,
        "rounds": len(gaps) - 1,
        "largest_gap_before": round(gaps[0], 4),
        "largest_gap_after": round(gaps[-1], 4),
        "largest_item_offset": round(float(np.abs(bias).max(initial=0.0)), 3),
        "end_offset": round(end, 3),
        "seconds": round(time.perf_counter() - started, 1),
    }


def _rounds(
    gen: Any, target: np.ndarray, n_patients: int, n_cal: int
) -> tuple[np.ndarray, float, list[float]]:
    """The item and END offsets, and the largest gap of each round's sample.

    At least the fewest :data:`ROUNDS` adjust (each round's sample noise averages out over
    them); more follow, up to the most, while some item's share is further from its target
    than sampling noise explains (:data:`NOISE`; a poorly fitted model starts far off).
    """
    items = gen.codec_.items
    # items every patient has are required while sampling; items nobody has are not items
    free = (target > 0) & (target < 1)
    bias, end = np.zeros(len(items)), 0.0
    gaps: list[float] = []
    want = np.log(target[free].sum()) if free.any() else 0.0
    seen: list[tuple[float, float]] = []  # (END offset, log distinct items per patient)
    fewest, most = ROUNDS
    z = NormalDist().inv_cdf(1 - NOISE / (2 * max(int(free.sum()), 1)))
    seeds = np.random.SeedSequence([gen.seed, 1]).generate_state(most + 1)
    for r in range(most + 1):
        gen.calibration_, gen.sampler_ = (bias, end), None
        syn = gen.sample(n_cal, seed=int(seeds[r]))
        got = item_prevalence(syn.events(), syn.key, items, n_cal)
        gap = np.abs(got - target)
        gaps.append(float(gap[free].max(initial=0.0)))
        close = gap <= z * np.sqrt(target * (1 - target) / n_cal) + 0.5 / n_cal
        if r == most or (r >= fewest and close[free].all()) or not free.any():
            break
        # which items: logit gaps, less their mean (a shift of every item's logit at the item
        # step changes nothing; how many is END's part)
        move = _logit(target, n_patients) - _logit(got, n_cal)
        move = np.where(free, move - move[free].mean(), 0.0)
        bias = np.clip(bias + STEP * move, -LIMIT, LIMIT)
        # how many: a Newton step on END's offset. How strongly the offset moves the count
        # depends on how many timelines could end at each gap (-1 when every gap could, as in
        # a geometric count), so the slope is fitted to the rounds so far once they spread.
        seen.append((end, float(np.log(max(got[free].sum(), 0.5 / n_cal)))))
        b, y = np.array(seen).T
        slope = -1.0
        if np.ptp(b) > 0.1:
            slope = float(np.polyfit(b, y, 1)[0])
        slope = float(np.clip(slope, -1.5, -0.15))
        step = float(np.clip((want - seen[-1][1]) / slope, -1.0, 1.0))
        end = float(np.clip(end + step, -LIMIT, LIMIT))
    return bias, end, gaps


def calibrate_record(
    gen: Any, events: pd.DataFrame, key: str, n_patients: int, budget: Any
) -> dict[str, Any]:
    """Calibrate ``gen`` unless turned off or under DP; what the training record says."""
    if not gen.calibrate:
        return {"skipped": "turned off (calibrate=False)"}
    if budget is not None:
        return {"skipped": "differential privacy: prevalence is not covered by DP-SGD"}
    from healthsynth.generators._lm._fit import lent_strategy

    rank = int(getattr(lent_strategy(), "rank", 0))
    if rank:  # a data-parallel fit keeps worker 0's model: the others' calibration is wasted
        return {"skipped": f"worker {rank} of a data-parallel fit: worker 0's model is kept"}
    return calibrate(gen, events, key, n_patients)


def bias_to_json(gen: Any) -> dict[str, Any]:
    """The offsets for generator.json: ``end`` and ``items`` by name (zeros left out)."""
    cal = getattr(gen, "calibration_", None)
    if cal is None:
        return {}
    names = [f"{t}/{i}" for t, i in gen.codec_.items]
    items = {n: round(float(b), 5) for n, b in zip(names, cal[0], strict=True) if b}
    return {"end": round(float(cal[1]), 5), "items": items}


def bias_from_json(gen: Any, folder: Any, state: Any) -> tuple[np.ndarray, float] | None:
    """The offsets read back (``None``: folders saved before calibration have none)."""
    from healthsynth.errors import ModelFolderError

    if not state:
        return None
    pos = {f"{t}/{i}": k for k, (t, i) in enumerate(gen.codec_.items)}
    bias = np.zeros(len(pos))
    try:
        end = float(state["end"])
        for name, b in dict(state["items"]).items():
            bias[pos[name]] = float(b)
        if not (np.isfinite(bias).all() and np.isfinite(end)):
            raise ValueError("an offset is not a finite number")
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFolderError(
            f"model folder {folder} is corrupted: generator.json's calibration is unreadable ({e})"
        ) from None
    return bias, end
