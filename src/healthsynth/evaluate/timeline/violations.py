"""Clinical violations in timelines.

Card
----
What: every event is checked for these kinds of violation:

- ``after_end``: the event lies after the patient's end of follow-up (any patient);
- ``after_death``: the same, for a patient who died at the end of follow-up (a subset of
  ``after_end``, reported on its own because it is impossible rather than unlikely); with a
  death event (``Dataset.death_event``), also any event on a later day than the death event;
- ``before_birth``: age at the event (age at day 0 + days / 365.25) below 0;
- ``wrong_sex``: an ICD-10-CM code specific to one sex (through the code map) on a patient of
  the other sex;
- ``outside_age_band``: an ICD-10-CM code specific to an age band (newborn, child, adult,
  maternal) at an age outside it;
- ``implausible_value``: a value outside the code map's plausible range ``[low, high]`` for
  that item;
- ``unknown_item``: an item the real training data never has;
- ``repeated_once_only``: a second (or later) event of an item that no real training patient
  has twice;
- ``after_terminal``: an event after an item that is always the last event of the real
  training patients who have it (a death, a transplant recorded as an event).

The value is the share of events with at least one violation; each kind also gets a record
(subgroup ``kind:NAME``) with its share of events.
Range: 0 to 1.
Direction: lower is better.
Reference: the same shares in the real holdout (checked against the training data's items).
Real data break these checks too (the real NAFLD cohort has a few events after the end of
follow-up and some implausible blood pressures), so the reference is the level to compare with,
not zero. The overall record carries a 95 % Wilson interval.
Details: per kind the count, the share of events, the patients affected and the items most
often involved; the kinds that could not be checked and why (no code map, no sex, age or end
column, calendar-date times for the age checks).
Limitations: only as good as the code map (an item without an entry is checked for nothing but
being unknown and its timing); one event at a time, so nothing is said about implausible
sequences (a second first diagnosis, a cure before onset).
Citation: the sex and age checks follow the idea of CMS's Medicare Code Editor (conflicts
between diagnosis codes and patient data), with code groups from ICD-10-CM's own structure.
"""

from __future__ import annotations

import math
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Dataset
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord, not_applicable
from healthsynth.evaluate.timeline._prepare import Timelines
from healthsynth.evaluate.timeline._records import sides

__all__ = ["INFO", "KINDS", "check_events", "compute", "as_code_map"]

NAME = "timeline_violations"
DIMENSION = "clinical"
KINDS = (
    "after_end",
    "after_death",
    "before_birth",
    "wrong_sex",
    "outside_age_band",
    "implausible_value",
    "unknown_item",
    "repeated_once_only",
    "after_terminal",
)
_Z95 = 1.959963984540054
_EXAMPLES = 5


INFO = MetricInfo(
    name=NAME,
    dimension=DIMENSION,
    kind="timelines",
    summary="Clinical checks of every event: timing, sex, age, values and known items.",
    measures=(
        Measure(
            NAME,
            "lower",
            "Share of events breaking a clinical check (after death or end of follow-up, wrong "
            "sex or age for the code, implausible value, unknown item); per kind in subgroups "
            "kind:NAME.",
            low=0,
            high=1,
        ),
    ),
)


def as_code_map(code_map: Any) -> Any:
    """A :class:`~healthsynth.knowledge.CodeMap` from a map, a packaged name or a CSV path."""
    if code_map is None:
        return None
    if isinstance(code_map, (str, PathLike)):
        from healthsynth.knowledge import load_code_map

        return load_code_map(code_map if isinstance(code_map, str) else Path(code_map))
    return code_map


def _not_checked(tl: Timelines, code_map: Any) -> dict[str, str]:
    ds = tl.dataset
    why: dict[str, str] = {}
    if ds.end is None:
        why["after_end"] = why["after_death"] = "no end-of-follow-up column"
    elif ds.death is None:
        why["after_death"] = "no death column"
    if ds.death_event is not None:
        why.pop("after_death", None)
    if ds.age is None:
        why["before_birth"] = why["outside_age_band"] = "no age column"
    elif tl.dates:
        why["before_birth"] = why["outside_age_band"] = (
            "event times are calendar dates, so the age at an event is unknown"
        )
    if code_map is None:
        for k in ("wrong_sex", "outside_age_band", "implausible_value"):
            why.setdefault(k, "no code map given")
    if ds.sex is None:
        why.setdefault("wrong_sex", "no sex column")
    return why


def structure_of(tl: Timelines) -> tuple[set[str], set[str]]:
    """The once-only and the terminal items of real timelines (labels ``table/item``)."""
    ev = tl.events
    if not len(ev):
        return set(), set()
    most = ev.groupby(["p", "label"]).size().groupby(level="label").max()
    last = np.ones(len(ev), bool)
    pp = ev["p"].to_numpy()
    last[:-1] = pp[1:] != pp[:-1]
    not_last = ev.loc[~last, "label"].unique()
    once = set(most.index[most == 1])
    return once, set(ev["label"].unique()) - set(not_last)


def _structure_breaks(tl: Timelines, once: set[str], terminal: set[str]) -> dict[str, np.ndarray]:
    ev = tl.events
    lab = ev["label"].to_numpy()
    repeat = (ev.groupby(["p", "label"]).cumcount().to_numpy() > 0) & np.isin(lab, list(once))
    hit = np.isin(lab, list(terminal)).astype(np.int64)
    # events after the patient's first terminal event (events are in each patient's order)
    seen_before = ev.assign(h=hit).groupby("p")["h"].cumsum().to_numpy() - hit
    return {"repeated_once_only": repeat, "after_terminal": seen_before > 0}


def check_events(
    tl: Timelines,
    *,
    known: set[str],
    code_map: Any,
    structure: tuple[set[str], set[str]] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Boolean per event for each kind that can be checked, and why the others cannot.

    ``structure`` (the once-only and terminal items of the real data, :func:`structure_of`)
    turns on the two structure checks.
    """
    ev = tl.events
    p, t = ev["p"].to_numpy(), ev["t"].to_numpy()
    skip = _not_checked(tl, code_map)
    bad: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore"):
        if "after_end" not in skip:
            bad["after_end"] = t > tl.end[p]
        if "after_death" not in skip:
            bad["after_death"] = (t > tl.end[p]) & tl.died[p]
            if tl.dataset.death_event is not None:
                bad["after_death"] |= t > tl.death_day[p]
        age_at = tl.age[p] + t / 365.25
        if "before_birth" not in skip:
            bad["before_birth"] = age_at < 0
    bad["unknown_item"] = ~np.isin(ev["label"].to_numpy(), list(known))
    if structure is not None:
        bad.update(_structure_breaks(tl, *structure))
    if code_map is None:
        return bad, skip
    labels = list(tl.items)
    codes = pd.Categorical(ev["label"], categories=labels).codes.astype(np.int64)
    sexes = np.zeros((len(labels), 2), bool)  # allowed: female, male
    band = np.tile([-math.inf, math.inf], (len(labels), 1))
    rng = np.tile([-math.inf, math.inf], (len(labels), 1))
    for k, lab in enumerate(labels):
        entry = code_map.get(*tl.items[lab])
        sexes[k] = True
        if entry is None:
            continue
        allowed = entry.sexes()
        sexes[k] = ("female" in allowed, "male" in allowed)
        lo, hi = entry.ages()
        if lo > 0 or hi < math.inf:  # only age-specific codes (a negative age: before_birth)
            band[k] = (lo, hi)
        rng[k] = (
            -math.inf if entry.low is None else entry.low,
            math.inf if entry.high is None else entry.high,
        )
    if "wrong_sex" not in skip:
        sex = tl.sex[p]
        bad["wrong_sex"] = ((sex == "female") & ~sexes[codes, 0]) | (
            (sex == "male") & ~sexes[codes, 1]
        )
    if "outside_age_band" not in skip:
        with np.errstate(invalid="ignore"):
            bad["outside_age_band"] = (age_at < band[codes, 0]) | (age_at > band[codes, 1])
    v = ev["value"].to_numpy()
    with np.errstate(invalid="ignore"):
        bad["implausible_value"] = np.isfinite(v) & ((v < rng[codes, 0]) | (v > rng[codes, 1]))
    return bad, skip


def _summary(tl: Timelines, bad: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    n = max(len(tl.events), 1)
    out = {}
    for kind in KINDS:
        if kind not in bad:
            continue
        hit = bad[kind]
        items = tl.events["label"].to_numpy()[hit]
        labs, counts = np.unique(items, return_counts=True) if len(items) else ([], [])
        top = np.argsort(-np.asarray(counts), kind="stable")[:_EXAMPLES]
        out[kind] = {
            "count": int(hit.sum()),
            "rate": float(hit.sum() / n),
            "patients": int(len(np.unique(tl.events["p"].to_numpy()[hit]))),
            "items": {str(labs[i]): int(counts[i]) for i in top},
        }
    return out


def _wilson(k: int, n: int) -> tuple[float, float] | None:
    if n == 0:
        return None
    p = k / n
    denom = 1 + _Z95**2 / n
    centre = (p + _Z95**2 / (2 * n)) / denom
    half = _Z95 * math.sqrt(p * (1 - p) / n + _Z95**2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _any(tl: Timelines, bad: dict[str, np.ndarray]) -> np.ndarray:
    out = np.zeros(len(tl.events), bool)
    for hit in bad.values():
        out |= hit
    return out


def compute(
    *,
    real: Dataset | Timelines,
    synthetic: Dataset | Timelines,
    holdout: Dataset | Timelines | None = None,
    seed: int = 0,
    code_map: Any = None,
) -> list[MetricRecord]:
    """Share of events breaking a clinical check, overall and per kind (lower is better).

    Parameters
    ----------
    real
        The training patients (their items are the known ones).
    synthetic
        The generated patients.
    holdout
        Real patients the generator never saw; their rates are the reference.
    seed
        Unused (the metric is exact); kept for the common signature.
    code_map
        A :class:`~healthsynth.knowledge.CodeMap`, a packaged mapping's name (``nafld``) or a
        mapping CSV; without one the sex, age-band and value-range checks are skipped.

    Returns
    -------
    list of MetricRecord
        One overall ``timeline_violations`` record and one per checked kind.
    """
    r, s, h = sides(real, synthetic, holdout)
    cmap = as_code_map(code_map)
    known = set(r.labels)
    structure = structure_of(r)
    bad_s, skip = check_events(s, known=known, code_map=cmap, structure=structure)
    any_s = _any(s, bad_s)
    kinds_s = _summary(s, bad_s)
    ref_rate, kinds_h = None, None
    if h is not None:
        bad_h, _ = check_events(h, known=known, code_map=cmap, structure=structure)
        ref_rate = float(_any(h, bad_h).mean()) if len(h.events) else None
        kinds_h = _summary(h, bad_h)
    n = len(s.events)
    if n == 0:
        return [
            not_applicable(
                NAME, DIMENSION, "the synthetic data has no events to check", direction="lower"
            )
        ]
    details = {
        "events": n,
        "events_with_violation": int(any_s.sum()),
        "kinds": kinds_s,
        "reference_kinds": kinds_h,
        "not_checked": skip,
        "once_only_items": sorted(structure[0]),
        "terminal_items": sorted(structure[1]),
        "code_map": getattr(cmap, "name", None),
        "unmapped_items": None
        if cmap is None
        else sorted(lab for lab in s.items if cmap.get(*s.items[lab]) is None),
    }
    out = [
        MetricRecord(
            name=NAME,
            dimension=DIMENSION,
            value=float(any_s.mean()),
            direction="lower",
            interval=_wilson(int(any_s.sum()), n),
            reference=ref_rate,
            details=details,
        )
    ]
    for kind, summary in kinds_s.items():
        out.append(
            MetricRecord(
                name=NAME,
                dimension=DIMENSION,
                subgroup=f"kind:{kind}",
                value=summary["rate"],
                direction="lower",
                reference=kinds_h[kind]["rate"] if kinds_h and kind in kinds_h else None,
                details=summary,
            )
        )
    return out
