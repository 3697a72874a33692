"""Regurgitation: synthetic rows that copy a training row or a prompt example, exactly or nearly.

Card
----
What: a probe for memorisation. A language model prompted with real example rows can copy them
back, and one pretrained on public text can recite rows of a public table (Pima is on the web)
that it was never shown. Records:

- ``exact_copy_share``: share of synthetic rows equal to some training row on every modelled
  column (a missing value equals a missing value; numbers compare as floats, so ``1`` equals
  ``1.0``). Reference: the same share among real holdout rows.
- ``near_copy_share``: share of synthetic rows whose distance to the closest training row is at
  most τ (exact copies included). The distance is the project's Gower-style distance
  (:mod:`healthsynth.data._distance`, as :mod:`.dcr` uses it). τ is the 5th percentile of the
  holdout rows' distance to their closest training row, so about 5 % of fresh real rows count
  as "near" by construction; that share of the holdout is the reference. Without a holdout, τ
  is the 5th percentile of the training rows' leave-one-out nearest-neighbour distance (the
  distance from each training row to the closest *other* training row), and there is no
  reference. ``details`` holds τ and how it was chosen.
- ``example_exact_copy_share`` and ``example_near_copy_share``: the same, against only the rows
  that were placed in prompts, with the same τ; references: the holdout's shares against the
  same example rows. Only reported when those rows are given: ``evaluate(...,
  examples=prompt_rows)`` or ``compute(..., examples=prompt_rows)``, a DataFrame with the real
  table's columns. ``details`` says how many example rows there were and how many of them are
  not training rows.

How this differs from :mod:`.dcr`: its ``exact_copy_rate`` counts synthetic rows at distance 0
from a training row under the encoded distance (where, for instance, two categories the schema
does not know look alike); ``exact_copy_share`` here compares the values themselves. The near
copies and the prompt-example shares are what this metric adds: an LLM that rewrites a copied
row with one number changed is a near copy, not an exact one.

Range: every share lies in [0, 1]; each has a 95 % Wilson score interval over the synthetic rows
queried.
Direction: lower is better.
Reference: each share among the real holdout rows (see the records above). Fresh real data
scores about 0.05 on ``near_copy_share``; exact copies of training rows should be as rare as in
the holdout (usually 0).
Sample sizes: at most ``max_rows`` (5,000) synthetic and holdout rows are queried (a seeded
subsample; the sizes are in ``details``), and as many training rows for the leave-one-out
fallback; all training rows and all example rows are searched, through an exact k-d tree.
Limitations: τ is relative to the data: where 5 % or more of the holdout rows equal a training
row (tables of few, coarse columns), τ is 0 and near copies are exact copies. The distance weighs
every column equally, so a copy with one column changed far away can fall outside τ. A
regurgitated row of a public table that is in neither the training rows nor the examples is not
detected. With few holdout rows, τ itself is uncertain, which the interval does not include.
Citation: Carlini et al. 2021, "Extracting Training Data from Large Language Models" (language
models recite training text verbatim); Bordt et al. 2024, "Elephants Never Forget: Memorization
and Learning of Tabular Data in Large Language Models" (LLMs have memorised popular public
tables verbatim); Platzer & Reutterer 2021 (distances to closest record judged against a
holdout); Wilson 1927 (score interval).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Column, Schema
from healthsynth.data._distance import RowEncoder, nearest_distances, neighbour_index
from healthsynth.data._rows import row_keys
from healthsynth.errors import DataError
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord, not_applicable
from healthsynth.evaluate.privacy._sample import subsample

__all__ = ["INFO", "compute"]

#: the share of fresh real rows that counts as "near": τ is this quantile of their distances
NEAR_QUANTILE = 0.05
_Z = 1.959963984540054  # two-sided 95 % normal quantile


INFO = MetricInfo(
    name="regurgitation",
    dimension="privacy",
    kind="table",
    summary="Synthetic rows that copy a training row or a prompt example, exactly or nearly.",
    measures=(
        Measure(
            "exact_copy_share",
            "lower",
            "Share of synthetic rows whose values all equal those of a training row (a "
            "regurgitation probe for LLM generators); the reference is the same share of the "
            "holdout.",
            low=0,
            high=1,
        ),
        Measure(
            "near_copy_share",
            "lower",
            "Share of synthetic rows within τ of a training row, τ being the distance within "
            "which 5% of fresh real (holdout) rows fall; the reference is that 5%.",
            low=0,
            high=1,
        ),
        Measure(
            "example_exact_copy_share",
            "lower",
            "Share of synthetic rows whose values all equal those of a row that was shown in a "
            "prompt.",
            low=0,
            high=1,
        ),
        Measure(
            "example_near_copy_share",
            "lower",
            "Share of synthetic rows within τ of a row that was shown in a prompt (the same τ "
            "as near_copy_share).",
            low=0,
            high=1,
        ),
    ),
)


def compute(
    *,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: Schema,
    holdout: pd.DataFrame | None = None,
    examples: pd.DataFrame | None = None,
    seed: int = 0,
    max_rows: int = 5_000,
) -> list[MetricRecord]:
    """Shares of synthetic rows that copy a training row (or a prompt example) exactly or nearly.

    Parameters
    ----------
    real
        The generator's training rows.
    synthetic
        Generated rows.
    schema
        The table's schema (its modelled columns are compared).
    holdout
        Real rows the generator never saw; they set τ and the references. Without them τ comes
        from the training rows' leave-one-out distances and there are no references.
    examples
        The real rows that were placed in prompts (a subset of ``real``, same columns); adds
        ``example_exact_copy_share`` and ``example_near_copy_share``.
    seed
        Seed of the subsampling.
    max_rows
        At most this many synthetic, holdout (and, without a holdout, training) rows are queried.

    Returns
    -------
    list of MetricRecord
        ``exact_copy_share`` and ``near_copy_share``, and with ``examples``
        ``example_exact_copy_share`` and ``example_near_copy_share``.

    Raises
    ------
    DataError
        If ``examples`` lacks a modelled column of ``real``.
    """
    rng = np.random.default_rng(seed)
    enc = RowEncoder(schema).fit(real)
    cols: list[Column] = enc.columns_
    if examples is not None:
        absent = [c.name for c in cols if c.name not in examples.columns]
        if absent:
            raise DataError(
                f"the prompt examples lack column(s) {', '.join(map(repr, absent))}; pass the "
                "real rows that were placed in prompts, with the real table's columns"
            )
    n_syn_total = len(synthetic)
    synthetic = subsample(synthetic, max_rows, rng)
    rx, sx = enc.transform(real), enc.transform(synthetic)
    index = neighbour_index(rx)
    d_syn = index.kneighbors(sx, n_neighbors=1)[0][:, 0]
    train_keys = set(row_keys(real, cols))
    syn_keys = row_keys(synthetic, cols)
    exact_syn = np.array([k in train_keys for k in syn_keys], dtype=bool)
    sizes: dict[str, Any] = {
        "n_synthetic": len(synthetic),
        "n_synthetic_total": n_syn_total,
        "n_train": len(real),
    }

    t = _tau(
        real,
        holdout,
        enc=enc,
        index=index,
        rx=rx,
        cols=cols,
        train_keys=train_keys,
        rng=rng,
        max_rows=max_rows,
    )
    sizes.update(t.sizes)
    tau = t.tau

    tau_details = {
        "tau": tau,
        "tau_quantile": NEAR_QUANTILE,
        "tau_source": t.source,
        "distance": "Gower-style mean over modelled columns (healthsynth.data._distance)",
    }
    near_note = (
        "τ is 0 (at least 5% of the reference rows equal a training row), so near copies are "
        "exact copies here"
        if tau == 0
        else None
    )
    records = [
        _share("exact_copy_share", exact_syn, t.exact_ref, dict(sizes), t.no_ref),
        _share(
            "near_copy_share",
            d_syn <= tau,
            t.near_ref,
            {**sizes, **tau_details},
            "; ".join(m for m in (t.no_ref, near_note) if m) or None,
        ),
    ]
    if examples is None:
        return records
    return records + _example_records(
        examples,
        enc=enc,
        cols=cols,
        train_keys=train_keys,
        syn_keys=syn_keys,
        sx=sx,
        t=t,
        sizes=sizes,
        tau_details=tau_details,
        near_note=near_note,
    )


@dataclass
class _Tau:
    """τ, where it comes from, and the references the holdout (when given) provides."""

    tau: float
    source: str
    sizes: dict[str, Any]
    no_ref: str | None = None
    hx: np.ndarray | None = None
    hold_keys: list[tuple[Any, ...]] = field(default_factory=list)
    exact_ref: float | None = None
    near_ref: float | None = None


def _tau(
    real: pd.DataFrame,
    holdout: pd.DataFrame | None,
    *,
    enc: RowEncoder,
    index: Any,
    rx: np.ndarray,
    cols: list[Column],
    train_keys: set[tuple[Any, ...]],
    rng: np.random.Generator,
    max_rows: int,
) -> _Tau:
    """τ, from the holdout rows' distances to their closest training row.

    Without a holdout, τ comes from the training rows' leave-one-out distances and there are
    no references.
    """
    if holdout is not None and len(holdout) > 0:
        n_hold_total = len(holdout)
        holdout = subsample(holdout, max_rows, rng)
        hx = enc.transform(holdout)
        d_hold = index.kneighbors(hx, n_neighbors=1)[0][:, 0]
        tau = float(np.quantile(d_hold, NEAR_QUANTILE))
        hold_keys = row_keys(holdout, cols)
        return _Tau(
            tau=tau,
            source="the 5th percentile of the holdout rows' distance to their closest training row",
            sizes={"n_holdout": len(holdout), "n_holdout_total": n_hold_total},
            hx=hx,
            hold_keys=hold_keys,
            exact_ref=float(np.mean([k in train_keys for k in hold_keys])),
            near_ref=float(np.mean(d_hold <= tau)),
        )
    rows = rng.choice(len(real), size=min(len(real), max_rows), replace=False)
    # the nearest row other than itself: of a row's two nearest rows one is the row itself
    # (distance 0), so the larger of the two is the leave-one-out distance
    d2 = index.kneighbors(rx[np.sort(rows)], n_neighbors=min(2, len(real)))[0]
    return _Tau(
        tau=float(np.quantile(d2[:, -1], NEAR_QUANTILE)),
        source="no holdout: the 5th percentile of the training rows' leave-one-out "
        "nearest-neighbour distance (the distance to the closest other training row)",
        sizes={"n_train_queried": len(rows)},
        no_ref="no holdout: τ comes from the training rows and there is no reference",
    )


def _example_records(
    examples: pd.DataFrame,
    *,
    enc: RowEncoder,
    cols: list[Column],
    train_keys: set[tuple[Any, ...]],
    syn_keys: list[tuple[Any, ...]],
    sx: np.ndarray,
    t: _Tau,
    sizes: dict[str, Any],
    tau_details: dict[str, Any],
    near_note: str | None,
) -> list[MetricRecord]:
    """The two shares of synthetic rows that copy a prompt example, exactly or within τ."""
    tau, no_ref, hx, hold_keys = t.tau, t.no_ref, t.hx, t.hold_keys
    n_examples = len(examples)
    if n_examples == 0:
        why = "the prompt-example table has no rows"
        return [
            not_applicable(name, "privacy", why, direction="lower")
            for name in ("example_exact_copy_share", "example_near_copy_share")
        ]
    ex_keys = row_keys(examples, cols)
    not_training = sum(k not in train_keys for k in ex_keys)
    ex_set = set(ex_keys)
    ex_x = enc.transform(examples)
    ex_sizes = {**sizes, "n_examples": n_examples, "n_examples_not_in_training": not_training}
    ex_note = (
        f"{not_training} of the {n_examples} example rows are not training rows"
        if not_training
        else None
    )
    ex_exact_ref = ex_near_ref = None
    if hx is not None:
        ex_exact_ref = float(np.mean([k in ex_set for k in hold_keys]))
        ex_near_ref = float(np.mean(nearest_distances(hx, ex_x)[:, 0] <= tau))
    d_syn_ex = nearest_distances(sx, ex_x)[:, 0]
    return [
        _share(
            "example_exact_copy_share",
            np.array([k in ex_set for k in syn_keys], dtype=bool),
            ex_exact_ref,
            dict(ex_sizes),
            "; ".join(m for m in (no_ref, ex_note) if m) or None,
        ),
        _share(
            "example_near_copy_share",
            d_syn_ex <= tau,
            ex_near_ref,
            {**ex_sizes, **tau_details},
            "; ".join(m for m in (no_ref, near_note, ex_note) if m) or None,
        ),
    ]


def _share(
    name: str,
    hits: np.ndarray,
    reference: float | None,
    details: dict[str, Any],
    message: str | None,
) -> MetricRecord:
    k, n = int(hits.sum()), len(hits)
    return MetricRecord(
        name=name,
        dimension="privacy",
        value=k / n if n else float("nan"),
        direction="lower",
        interval=_wilson(k, n),
        reference=reference,
        details={**details, "count": k},
        message=message,
    )


def _wilson(k: int, n: int) -> tuple[float, float] | None:
    """95 % Wilson score interval of the proportion ``k / n``."""
    if n == 0:
        return None
    p = k / n
    z2 = _Z * _Z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = _Z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi
