"""The structure of an event log, learned from the training patients and kept while sampling.

Seven kinds of rule, each per item (an item is ``table/item``):

* **always**: every training patient has the item (a diagnosis that defines the cohort), so
  every synthetic timeline has it before it ends, and before any terminal item;
* **once**: no training patient has the item twice, so no synthetic patient does;
* **terminal**: whenever the item occurs it is the patient's last event (death, transplant,
  withdrawal), so a synthetic timeline ends right after it;
* **max_count**: the most times one training patient has the item (kept for items seen more
  than once; a once-only item has a count of one);
* **time_since_start**: the fewest and most days between the patient's first event and the
  item, over the training patients (an item always first has ``[0, 0]``);
* **at_end**: (terminal items, data with an end of follow-up) the item falls on its patient's
  end of follow-up in at least :data:`AT_END_SHARE` of its events, so a synthetic patient's
  event of it is placed on their end day: death ends follow-up, never the other way round;
* **fixed_day**: every event of the item falls on one day (days from the index date, as the
  time column counts them), so it is sampled on that day: an enrolment at day 0 stays at day 0.

The last two are learned from items seen at least :data:`MIN_EVENTS` times (fewer events make
no rule, only a coincidence). The death event of the dataset (``Dataset.death_event``) is
always once-only and terminal.

Learning can be turned off (``learn_structure=False``) and any rule replaced with the
``structure`` setting, e.g. ``{"once": ["events/death"], "terminal": ["events/death"],
"max_count": {"labs/hdl": 40}, "time_since_start": {"events/mi": [0, 3650]},
"at_end": ["events/death"], "fixed_day": {"events/enrolled": 0}}``. A key that is given
replaces what was learned for that key (``{"once": []}`` lets every item repeat,
``{"at_end": []}`` lets death fall before the end of follow-up). A rule the training data break
(an item listed as once-only that some patient has twice) is refused with one sentence:
sampling could never match the data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.errors import ParameterError

__all__ = ["AT_END_SHARE", "MIN_EVENTS", "STRUCTURE_KEYS", "Structure", "event_table"]

#: keys of the ``structure`` setting
STRUCTURE_KEYS = (
    "always",
    "once",
    "terminal",
    "max_count",
    "time_since_start",
    "at_end",
    "fixed_day",
)
#: keys whose value is a list of items (the others map items to a bound)
_LIST_KEYS = ("always", "once", "terminal", "at_end")
#: least share of an item's events (of patients with a known end) on the end of follow-up for
#: an ``at_end`` rule: nearly always, so that a few data-entry slips do not hide the rule
AT_END_SHARE = 0.98
#: fewest events of an item for an ``at_end`` or ``fixed_day`` rule to be learned
MIN_EVENTS = 5


def event_table(
    events: pd.DataFrame, key: str, time: str, items: Sequence[tuple[str, str]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per event in sequence order: patient, item index, day, days since first event, last or not.

    Events of items not in ``items`` are left out.
    """
    index = {ti: i for i, ti in enumerate(items)}
    item = np.array(
        [index.get(ti, -1) for ti in zip(events["table"], events["item"], strict=True)], np.int64
    )
    keep = item >= 0
    pid = events[key].to_numpy()[keep]
    item = item[keep]
    t = pd.to_numeric(events[time]).to_numpy(float)[keep]
    n = len(item)
    first = np.ones(n, bool)
    last = np.ones(n, bool)
    if n:
        change = pid[1:] != pid[:-1]
        first[1:] = change
        last[:-1] = change
    start = t[np.maximum.accumulate(np.where(first, np.arange(n), 0))] if n else t
    return pid, item, t, t - start, last


class Structure:
    """Per-item rules of a timeline (see the module docstring), as arrays over the codec's items.

    Parameters
    ----------
    names
        The items' names (``table/item``), in the codec's order.
    state
        The JSON form (:meth:`to_dict`): ``always``, ``once``, ``terminal`` and ``at_end`` (lists
        of names), ``max_count`` (name -> count), ``time_since_start`` (name -> ``[low, high]``)
        and ``fixed_day`` (name -> day). Folders saved before a key have none of its rules.
    """

    def __init__(self, names: Sequence[str], state: Mapping[str, Any] | None = None) -> None:
        self.names = list(names)
        state = dict(state or {})
        self.state: dict[str, Any] = {
            "always": sorted(state.get("always", [])),
            "once": sorted(state.get("once", [])),
            "terminal": sorted(state.get("terminal", [])),
            "max_count": dict(sorted(state.get("max_count", {}).items())),
            "time_since_start": dict(sorted(state.get("time_since_start", {}).items())),
            "at_end": sorted(state.get("at_end", [])),
            "fixed_day": dict(sorted(state.get("fixed_day", {}).items())),
        }
        k = len(self.names)
        pos = {n: i for i, n in enumerate(self.names)}
        self.always = np.zeros(k, bool)
        self.once = np.zeros(k, bool)
        self.terminal = np.zeros(k, bool)
        self.max_count = np.full(k, np.iinfo(np.int32).max, np.int64)
        self.time_lo = np.full(k, -np.inf)
        self.time_hi = np.full(k, np.inf)
        self.at_end = np.zeros(k, bool)
        self.fixed_day = np.full(k, np.nan)
        for n in self.state["always"]:
            self.always[pos[n]] = True
        for n in self.state["once"]:
            self.once[pos[n]] = True
        for n in self.state["terminal"]:
            self.terminal[pos[n]] = True
        for n, c in self.state["max_count"].items():
            self.max_count[pos[n]] = int(c)
        for n, (lo, hi) in self.state["time_since_start"].items():
            self.time_lo[pos[n]] = -np.inf if lo is None else float(lo)
            self.time_hi[pos[n]] = np.inf if hi is None else float(hi)
        for n in self.state["at_end"]:
            self.at_end[pos[n]] = True
        for n, day in self.state["fixed_day"].items():
            self.fixed_day[pos[n]] = float(day)
        self.max_count = np.where(self.once | self.terminal, 1, self.max_count)

    # -- learning -------------------------------------------------------------------------
    @classmethod
    def learn(
        cls,
        events: pd.DataFrame,
        *,
        key: str,
        time: str,
        items: Sequence[tuple[str, str]],
        n_patients: int,
        learn: bool = True,
        overrides: Mapping[str, Any] | None = None,
        death_item: int | None = None,
        end: pd.Series | None = None,
    ) -> Structure:
        """The rules of ``events`` (as from ``Dataset.events()``), with ``overrides`` applied.

        ``end`` is each patient's end of follow-up in days (indexed by patient; ``None`` when
        the data have none, and then no ``at_end`` rule can hold). Raises
        :class:`ParameterError` when an override names an unknown item or key, or contradicts
        the data.
        """
        names = [f"{t}/{i}" for t, i in items]
        obs = _observed(events, key=key, time=time, items=items, n_patients=n_patients, end=end)
        state: dict[str, Any] = {k: [] if k in _LIST_KEYS else {} for k in STRUCTURE_KEYS}
        if learn:
            state = _learned(obs, names)
        given = _checked_overrides(overrides, names, items, obs)
        state.update(given)
        if death_item is not None:  # nothing follows a death, and nobody dies twice
            for k in ("once", "terminal"):
                if names[death_item] not in state[k]:
                    state[k] = [*state[k], names[death_item]]
        loose = [n for n in state["at_end"] if n not in state["terminal"]]
        if loose and "at_end" in given:
            raise ParameterError(
                f"structure['at_end'] lists '{loose[0]}', which is not terminal; an item placed "
                "on the end of follow-up must end the timeline: list it under 'terminal' too"
            )
        state["at_end"] = [n for n in state["at_end"] if n not in loose]
        return cls(names, state)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (saved in the model folder)."""
        return self.state

    def summary(self) -> dict[str, Any]:
        """What the training record says about the rules."""
        return {
            "always": self.state["always"],
            "once": self.state["once"],
            "terminal": self.state["terminal"],
            "at_end": self.state["at_end"],
            "fixed_day": self.state["fixed_day"],
            "n_count_bounds": len(self.state["max_count"]),
            "n_time_bounds": len(self.state["time_since_start"]),
        }


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


def _learned(obs: dict[str, np.ndarray], names: list[str]) -> dict[str, Any]:
    """The rules the observations ``obs`` (:func:`_observed`) show, in the JSON form."""
    seen = obs["max_count"] > 0
    enough = obs["n_events"] >= MIN_EVENTS
    at_end = obs["terminal"] & (obs["n_with_end"] >= MIN_EVENTS)
    at_end &= obs["n_at_end"] >= AT_END_SHARE * obs["n_with_end"]
    fixed = enough & (obs["day_lo"] == obs["day_hi"]) & ~at_end
    return {
        "always": [names[i] for i in np.flatnonzero(obs["always"])],
        "once": [names[i] for i in np.flatnonzero(obs["max_count"] == 1)],
        "terminal": [names[i] for i in np.flatnonzero(obs["terminal"])],
        "max_count": {
            names[i]: int(obs["max_count"][i]) for i in np.flatnonzero(obs["max_count"] > 1)
        },
        "time_since_start": {
            names[i]: [_num(obs["time_lo"][i]), _num(obs["time_hi"][i])]
            for i in np.flatnonzero(seen)
        },
        "at_end": [names[i] for i in np.flatnonzero(at_end)],
        "fixed_day": {names[i]: _num(obs["day_lo"][i]) for i in np.flatnonzero(fixed)},
    }


def _observed(
    events: pd.DataFrame,
    *,
    key: str,
    time: str,
    items: Sequence[tuple[str, str]],
    n_patients: int,
    end: pd.Series | None = None,
) -> dict[str, np.ndarray]:
    """What each item does in the training events (the facts the rules come from).

    Per item: in every patient or not, most in one patient, always last, days since start, first
    and last day, events, events of patients with a known end and of those on the end day.
    """
    k = len(items)
    pid, item, day, since, last = event_table(events, key, time, items)
    max_count = np.zeros(k, np.int64)
    lo, hi = np.full(k, np.inf), np.full(k, -np.inf)
    day_lo, day_hi = np.full(k, np.inf), np.full(k, -np.inf)
    terminal = np.zeros(k, bool)
    always = np.zeros(k, bool)
    n_events = np.bincount(item, minlength=k)
    n_with_end, n_at_end = np.zeros(k, np.int64), np.zeros(k, np.int64)
    if len(item):
        counts = pd.DataFrame({"p": pid, "i": item}).value_counts()
        per_item = counts.groupby(level="i").max()
        max_count[per_item.index.to_numpy()] = per_item.to_numpy()
        np.minimum.at(lo, item, since)
        np.maximum.at(hi, item, since)
        np.minimum.at(day_lo, item, day)
        np.maximum.at(day_hi, item, day)
        not_last = np.zeros(k, bool)
        np.logical_or.at(not_last, item, ~last)
        terminal = (max_count > 0) & ~not_last
        with_item = counts.groupby(level="i").size()  # patients with the item
        always[with_item.index.to_numpy()] = with_item.to_numpy() >= n_patients
    if end is not None and len(item):
        ends = pd.to_numeric(end, errors="coerce")
        ends = ends[~ends.index.duplicated()].reindex(pid).to_numpy(float)
        known = np.isfinite(ends)
        n_with_end = np.bincount(item[known], minlength=k)
        n_at_end = np.bincount(item[known & (np.abs(day - ends) < 1e-9)], minlength=k)
    return {
        "always": always,
        "max_count": max_count,
        "terminal": terminal,
        "time_lo": lo,
        "time_hi": hi,
        "day_lo": day_lo,
        "day_hi": day_hi,
        "n_events": n_events,
        "n_with_end": n_with_end,
        "n_at_end": n_at_end,
        "has_end": np.array(end is not None),
    }


def _resolve(name: Any, names: list[str], items: Sequence[tuple[str, str]], what: str) -> int:
    """The index of an item named ``table/item`` or ``item`` (which must then be unique)."""
    s = str(name)
    if s in names:
        return names.index(s)
    hits = [i for i, (_, it) in enumerate(items) if it == s]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise ParameterError(
            f"structure['{what}'] names '{s}', which is an item of several tables; write it as "
            f"one of {', '.join(names[i] for i in hits)}"
        )
    raise ParameterError(
        f"structure['{what}'] names the item '{s}', which never occurs in the training events; "
        f"items are named like {', '.join(names[:5])}"
    )


def _checked_overrides(
    overrides: Mapping[str, Any] | None,
    names: list[str],
    items: Sequence[tuple[str, str]],
    obs: dict[str, np.ndarray],
) -> dict[str, Any]:
    """The given keys of the ``structure`` setting, with item names resolved and checked."""
    out: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        if key not in STRUCTURE_KEYS:
            raise ParameterError(
                f"structure has the unknown key '{key}'; the keys are {', '.join(STRUCTURE_KEYS)}"
            )
        if key in _LIST_KEYS:
            if isinstance(value, str) or not isinstance(value, (list, tuple, set)):
                raise ParameterError(f"structure['{key}'] must be a list of item names")
            idx = [_resolve(v, names, items, key) for v in value]
            for i in idx:
                _check_list_rule(key, names[i], i, obs)
            out[key] = [names[i] for i in idx]
        else:
            if not isinstance(value, Mapping):
                raise ParameterError(f"structure['{key}'] must map item names to bounds")
            rules: dict[str, Any] = {}
            for name, bound in value.items():
                i = _resolve(name, names, items, key)
                if bound is not None:
                    rules[names[i]] = _check_bound(key, names[i], bound, i, obs)
            out[key] = rules
    return out


def _check_list_rule(key: str, name: str, i: int, obs: dict[str, np.ndarray]) -> None:
    if key == "always" and not obs["always"][i]:
        raise ParameterError(
            f"structure['always'] lists '{name}', but some training patients never have it; "
            "leave it out or fix the data"
        )
    if key == "once" and obs["max_count"][i] > 1:
        raise ParameterError(
            f"structure['once'] lists '{name}', but a training patient has it "
            f"{int(obs['max_count'][i])} times; leave it out or fix the data"
        )
    if key == "terminal" and obs["max_count"][i] > 0 and not obs["terminal"][i]:
        raise ParameterError(
            f"structure['terminal'] lists '{name}', but other events follow it in the training "
            "data; leave it out or drop the events after it"
        )
    if key == "at_end" and not obs["has_end"]:
        raise ParameterError(
            f"structure['at_end'] lists '{name}', but the data have no end of follow-up to place "
            "it on; name the patients' end column (Dataset end=..., fit --end) or leave it out"
        )
    if key == "at_end" and obs["n_at_end"][i] < AT_END_SHARE * obs["n_with_end"][i]:
        off = int(obs["n_with_end"][i] - obs["n_at_end"][i])
        raise ParameterError(
            f"structure['at_end'] lists '{name}', but {off} of its {int(obs['n_with_end'][i])} "
            "training events are not on the patient's end of follow-up; leave it out or fix "
            "the data"
        )


def _check_bound(key: str, name: str, bound: Any, i: int, obs: dict[str, np.ndarray]) -> Any:
    if key == "max_count":
        if isinstance(bound, bool) or not isinstance(bound, (int, np.integer)) or bound < 1:
            raise ParameterError(
                f"structure['max_count']['{name}'] must be a whole number of at least 1; got "
                f"{bound!r}"
            )
        if bound < obs["max_count"][i]:
            raise ParameterError(
                f"structure['max_count'] allows '{name}' {bound} time(s), but a training "
                f"patient has it {int(obs['max_count'][i])} times; raise the bound or leave it out"
            )
        return int(bound)
    if key == "fixed_day":
        return _check_day(name, bound, i, obs)
    try:
        lo, hi = (None if b is None else float(b) for b in bound)
    except (TypeError, ValueError):
        raise ParameterError(
            f"structure['time_since_start']['{name}'] must be [low, high] in days (None for "
            f"no bound); got {bound!r}"
        ) from None
    seen_lo, seen_hi = obs["time_lo"][i], obs["time_hi"][i]
    if obs["max_count"][i] and (
        (lo is not None and lo > seen_lo) or (hi is not None and hi < seen_hi)
    ):
        raise ParameterError(
            f"structure['time_since_start'] bounds '{name}' to [{lo}, {hi}] days, but training "
            f"patients have it from day {_num(seen_lo)} to day {_num(seen_hi)} after their first "
            "event; widen the bounds or leave them out"
        )
    return [lo, hi]


def _check_day(name: str, day: Any, i: int, obs: dict[str, np.ndarray]) -> float | int:
    """A ``fixed_day`` override: a finite number of days that every event of the item is on."""
    if (
        isinstance(day, bool)
        or not isinstance(day, (int, float, np.number))
        or not np.isfinite(day)
    ):
        raise ParameterError(
            f"structure['fixed_day']['{name}'] must be a number of days (None for no rule); got "
            f"{day!r}"
        )
    lo, hi = obs["day_lo"][i], obs["day_hi"][i]
    if obs["n_events"][i] and not lo == hi == float(day):
        raise ParameterError(
            f"structure['fixed_day'] pins '{name}' to day {_num(day)}, but training patients "
            f"have it from day {_num(lo)} to day {_num(hi)}; leave it out or fix the data"
        )
    return _num(day)
