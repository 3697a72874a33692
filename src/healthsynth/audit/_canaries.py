"""The canary audit: re-fit a generator with unique records inserted, and see what it kept.

Steps (Carlini et al. 2019, adapted to tables):

1. draw ``canaries`` records unlike every training row (:func:`._draw.draw_records`), and
   ``candidates`` more records the same way;
2. re-fit the generator with its own settings on the training rows plus the canaries (each
   inserted ``copies`` times);
3. **exposure**: rank each canary's log-likelihood (``score_rows``) among the candidates', in
   the re-fitted model and in the audited model, which never saw the canaries (the
   reference): a model that memorised a canary ranks it near the top;
4. **reproduction**: sample ``samples`` rows from both models and count rows equal to a
   canary (``exact``), or within the distance at which the closest 5 % of real rows lie to
   another real row (``near``).

Without ``score_rows`` (generators that give no per-row likelihood) only reproduction is
measured. For a DP model the re-fit is DP too, so the audit measures the guarantee in practice.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.audit._draw import draw_records
from healthsynth.audit._exposure import (
    CHANCE_EXPOSURE,
    exposure,
    mean_interval,
    more_exposed_p_value,
)
from healthsynth.data._rows import row_keys
from healthsynth.errors import DataError, ParameterError
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord, not_applicable

__all__ = ["INFO", "canary_audit"]

#: What the audit's records mean (the report's glossary).
INFO = MetricInfo(
    name="canary_audit",
    dimension="privacy",
    kind="table",
    summary="What a re-fitted generator keeps of unique canary records inserted in its rows.",
    measures=(
        Measure(
            "canary_exposure",
            "lower",
            "Exposure of the canaries: log2(candidates + 1) - log2(rank of each canary's "
            "likelihood among records drawn like it), mean over the canaries trained on; "
            "the reference is the model that never saw them (chance: about 1.44 bits).",
            low=0,
            unit="bits",
        ),
        Measure(
            "canary_reproduced",
            "lower",
            "Sampled rows equal to a canary (exact) or as close to one as the closest 5 % of "
            "real rows are to another (near); the reference samples the audited model.",
            low=0,
            unit="rows",
        ),
    ),
)


def _count(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ParameterError(
            f"parameter '{name}' must be a whole number of at least {low}; got {value!r}"
        )
    return int(value)


def canary_audit(
    model: Any,
    data: pd.DataFrame,
    *,
    canaries: int = 10,
    candidates: int = 10_000,
    samples: int = 100_000,
    copies: int = 1,
    seed: int = 0,
) -> dict[str, Any]:
    """Audit a fitted table generator with canary records (see the module docstring).

    Parameters
    ----------
    model
        A fitted table generator (the reference: it never saw the canaries). It is re-fitted
        with its own settings; it is not changed.
    data
        The rows it was trained on.
    canaries
        Canary records to insert.
    candidates
        Records each canary is ranked against (exposure can show at most log2(candidates + 1)
        bits).
    samples
        Rows sampled from each model to look for the canaries.
    copies
        Times each canary is inserted (Carlini et al. show exposure growing with repeats).
    seed
        Seed of the canaries, candidates and samples.

    Returns
    -------
    dict
        ``records`` (``canary_exposure`` and ``canary_reproduced`` records, as an evaluation's),
        ``canaries`` (the canary rows), ``meta`` (sizes, settings, seconds) and ``model`` (the
        re-fitted generator, for inspection; not JSON).
    """
    canaries = _count(canaries, "canaries", 1)
    candidates = _count(candidates, "candidates", 10)
    samples = _count(samples, "samples", 1)
    copies = _count(copies, "copies", 1)
    model._check_fitted()
    if getattr(model, "data_kind", "table") != "table":
        raise ParameterError(
            f"the canary audit re-fits table generators; '{model.name}' learns {model.data_kind}"
        )
    schema = model.schema_
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame; got {type(data).__name__}")
    schema.validate(data)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    rules = getattr(model, "rules_", None)
    canary_rows = draw_records(data, schema, canaries, rng, rules=rules)
    pool = draw_records(
        data,
        schema,
        candidates,
        rng,
        avoid=pd.concat([data, canary_rows], ignore_index=True),
        rules=rules,
        unique=False,
        label="candidate",
    )
    train = pd.concat([data] + [canary_rows] * copies, ignore_index=True)
    refit = type(model)(**model.get_params())
    fit_started = time.perf_counter()
    if rules is not None:
        refit.fit(train, schema=schema, rules=rules)
    else:
        refit.fit(train, schema=schema)
    fit_seconds = time.perf_counter() - fit_started
    trained = _trained(refit, len(data), canaries, copies)
    records = _exposure_records(refit, model, canary_rows, pool, trained, rng)
    sample_started = time.perf_counter()
    records += _reproduction_records(refit, model, canary_rows, data, samples, seed)
    meta = {
        "generator": model.name,
        "canaries": canaries,
        "candidates": candidates,
        "samples": samples,
        "copies": copies,
        "seed": seed,
        "n_rows": len(data),
        "canaries_in_training": int(trained.sum()),
        "refit_seconds": round(fit_seconds, 3),
        "sample_seconds": round(time.perf_counter() - sample_started, 3),
        "dp": refit.training_record_.get("dp"),
        "reference_dp": getattr(model, "training_record_", {}).get("dp"),
    }
    return {
        "records": records,
        "canaries": canary_rows,
        "meta": meta,
        "seconds": round(time.perf_counter() - started, 3),
        "model": refit,
    }


def _trained(refit: Any, n_data: int, k: int, copies: int) -> np.ndarray:
    """Which canaries the re-fit trained on (a canary in its validation part was not)."""
    held = set(np.asarray(getattr(refit, "validation_rows_", []), int).tolist())
    out = np.zeros(k, bool)
    for c in range(copies):
        for i in range(k):
            out[i] |= (n_data + c * k + i) not in held
    return out


def _exposure_records(
    refit: Any,
    reference: Any,
    canary_rows: pd.DataFrame,
    pool: pd.DataFrame,
    trained: np.ndarray,
    rng: np.random.Generator,
) -> list[MetricRecord]:
    name = "canary_exposure"
    if not hasattr(refit, "score_rows"):
        why = (
            f"generator '{refit.name}' gives no per-row likelihood (score_rows); only "
            "reproduction is measured"
        )
        return [not_applicable(name, "privacy", why, direction="lower")]
    if not trained.any():
        why = "every canary fell in the re-fit's validation rows; insert more (canaries, copies)"
        return [not_applicable(name, "privacy", why, direction="lower")]
    both = pd.concat([canary_rows, pool], ignore_index=True)
    k = len(canary_rows)
    seen_scores = refit.score_rows(both)
    ref_scores = reference.score_rows(both)
    seen = exposure(seen_scores[:k], seen_scores[k:])
    ref = exposure(ref_scores[:k], ref_scores[k:])
    top = float(np.log2(len(pool) + 1))
    p = more_exposed_p_value(seen[trained], ref[trained])
    details = {
        "unit": "bits",
        "exposure": [round(float(v), 4) for v in seen],
        "reference_exposure": [round(float(v), 4) for v in ref],
        "trained": trained.tolist(),
        "max_possible": round(top, 4),
        "chance": round(CHANCE_EXPOSURE, 4),
        "p_value": p,
        "distinguishable": bool(p < 0.05),
        "n_candidates": len(pool),
    }
    return [
        MetricRecord(
            name=name,
            dimension="privacy",
            value=float(seen[trained].mean()),
            direction="lower",
            interval=mean_interval(seen[trained], rng),
            reference=float(ref[trained].mean()),
            details=details,
        ),
        MetricRecord(
            name=name,
            dimension="privacy",
            value=float(seen[trained].max()),
            direction="lower",
            subgroup="max",
            reference=float(ref[trained].max()),
            details={"unit": "bits", "max_possible": round(top, 4)},
        ),
    ]


def _reproduction_records(
    refit: Any,
    reference: Any,
    canary_rows: pd.DataFrame,
    data: pd.DataFrame,
    samples: int,
    seed: int,
) -> list[MetricRecord]:
    from healthsynth.data._distance import RowEncoder, nearest_distances

    schema = refit.schema_
    cols = schema.modelled
    keys = {key: i for i, key in enumerate(row_keys(canary_rows, cols))}
    enc = RowEncoder(schema).fit(data)
    cx = enc.transform(canary_rows)
    # a sampled row is a near copy when it lies as close to a canary as the closest 5 % of
    # real rows lie to another real row (the regurgitation probe's radius)
    dx = enc.transform(data)
    tau = float(np.quantile(nearest_distances(dx, dx, k=2)[:, -1], 0.05))
    counts = {}
    for label, gen in (("seen", refit), ("reference", reference)):
        rows = gen.sample(samples, seed=seed + 1)
        exact = [keys.get(k) for k in row_keys(rows, cols)]
        d, j = _nearest(enc.transform(rows), cx)
        near = d <= tau
        counts[label] = {
            "exact": sum(e is not None for e in exact),
            "exact_canaries": len({e for e in exact if e is not None}),
            "near": int(near.sum()),
            "near_canaries": len(set(j[near].tolist())),
        }
    out = []
    for sub in ("exact", "near"):
        out.append(
            MetricRecord(
                name="canary_reproduced",
                dimension="privacy",
                value=float(counts["seen"][sub]),
                direction="lower",
                subgroup=sub,
                reference=float(counts["reference"][sub]),
                details={
                    "unit": "rows",
                    "samples": samples,
                    "canaries_reproduced": counts["seen"][f"{sub}_canaries"],
                    "reference_canaries_reproduced": counts["reference"][f"{sub}_canaries"],
                    **({"radius": round(tau, 6)} if sub == "near" else {}),
                },
            )
        )
    return out


def _nearest(x: np.ndarray, canaries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance of each row to its nearest canary (L1 / width, as RowEncoder), and which."""
    from healthsynth.data._distance import nearest_neighbours

    d, idx = nearest_neighbours(x, canaries, k=1)
    return d[:, 0], idx[:, 0]
