"""Singling out, linkability and inference risks, measured with Anonymeter.

Card
----
What: the three re-identification risks named by the EU's Article 29 Working Party, each
estimated by Anonymeter as the success of an attack that uses the synthetic data against the
training rows, minus the success of the same attack against the holdout (control) rows,
normalised: risk = (attack − control) / (1 − control).

- ``singling_out_risk``: multivariate queries (3 columns) built from synthetic rows that match
  exactly one synthetic row; success = the query matches exactly one training row.
- ``linkability_risk``: the quasi-identifiers (the modelled columns that are not sensitive) are
  split into two halves, first half and second half in schema order, as if held by two
  different parties; success = both halves of a training row have the same nearest synthetic
  row (1 neighbour).
- ``inference_risk`` (subgroup = the secret column): knowing all other columns, guess the secret
  from the nearest synthetic row; one record per sensitive column, or for the target column when
  no sensitive column is declared.

Range: [0, 1].
Direction: lower.
Reference: 0 (fresh real data, no excess over the control attack).
Sample sizes: ``n_attacks`` = min(500, holdout rows, training rows); training and synthetic
rows are subsampled to ≤ 10,000 each, and the holdout to ≤ 10,000 (seeded; sizes in
``details``). Interval: Anonymeter's 95 % confidence interval (Wilson score, propagated to the
risk). ``details`` holds the attack, baseline (random guessing) and control success rates.
Limitations: the attacks are specific and rather weak; a low risk is not a guarantee. When the
attack does no better than random guessing, Anonymeter calls the result untrustworthy
(``details["note"]``). Columns missing in every training row are left out. Needs a holdout and
the optional ``anonymeter`` package (the ``privacy`` extra).
Citation: Giomi, Boenisch, Wehmeyer & Tasnádi 2023, "A Unified Framework for Quantifying Privacy
Risk in Synthetic Data", PoPETs 2023(2); Article 29 Data Protection Working Party, Opinion
05/2014 on Anonymisation Techniques.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord, not_applicable
from healthsynth.evaluate.privacy._sample import subsample

__all__ = ["INFO", "compute"]

NAMES = ("singling_out_risk", "linkability_risk", "inference_risk")
_INSTALL = "install the privacy extra: pip install 'healthsynth[privacy]'"


INFO = MetricInfo(
    name="anonymeter",
    dimension="privacy",
    kind="table",
    summary="Singling-out, linkability and inference risks measured with Anonymeter.",
    measures=(
        Measure(
            "singling_out_risk",
            "lower",
            "Anonymeter: risk that synthetic rows single out one real person (attack success "
            "beyond the control rows); 0 = none.",
            low=0,
            high=1,
        ),
        Measure(
            "linkability_risk",
            "lower",
            "Anonymeter: risk that synthetic rows link two halves of a real record; 0 = none.",
            low=0,
            high=1,
        ),
        Measure(
            "inference_risk",
            "lower",
            "Anonymeter: risk that synthetic rows reveal a secret column of a real record; "
            "0 = none.",
            low=0,
            high=1,
        ),
    ),
)


def compute(
    *,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
    schema: Schema,
    seed: int = 0,
    n_attacks: int = 500,
    max_rows: int = 10_000,
) -> list[MetricRecord]:
    """Anonymeter's singling-out, linkability and inference risks.

    Parameters
    ----------
    real
        The generator's training rows (Anonymeter's ``ori``).
    synthetic
        Generated rows (``syn``).
    holdout
        Real rows the generator never saw (``control``).
    schema
        The table's schema: modelled columns are used, ``schema.sensitive`` (else the target) are
        the inference secrets.
    seed
        Seed of the subsampling and of the singling-out queries.
    n_attacks
        Number of attacks per evaluator (capped at the holdout's and training rows' sizes).
    max_rows
        Training, synthetic and holdout rows are subsampled to at most this many.

    Returns
    -------
    list of MetricRecord
        ``singling_out_risk``, ``linkability_risk`` and one ``inference_risk`` per secret.
    """
    try:
        from anonymeter.evaluators import (
            InferenceEvaluator,
            LinkabilityEvaluator,
            SinglingOutEvaluator,
        )
    except ImportError:
        return [_na(name, _INSTALL) for name in NAMES]
    if holdout is None or len(holdout) == 0:
        why = "no holdout: Anonymeter needs real rows the generator never saw as its control"
        return [_na(name, why) for name in NAMES]
    if len(real) == 0 or len(synthetic) == 0:
        return [_na(name, "no training or synthetic rows") for name in NAMES]

    rng = np.random.default_rng(seed)
    cols = [c for c in schema.modelled if c.name in real.columns and real[c.name].notna().any()]
    if not cols:
        return [_na(name, "no modelled column has values in the training rows") for name in NAMES]
    safe = {c.name: f"c{i}" for i, c in enumerate(cols)}  # Anonymeter builds queries from names
    ori, syn, ctl = (
        _prepare(subsample(df, max_rows, rng), cols, safe) for df in (real, synthetic, holdout)
    )
    n = max(1, min(n_attacks, len(ori), len(ctl)))
    sizes = {"n_attacks": n, "n_train": len(ori), "n_synthetic": len(syn), "n_holdout": len(ctl)}
    a_seed = int(rng.integers(2**31))

    secrets = [s for s in schema.sensitive if s in safe] or (
        [schema.target] if schema.target in safe else []
    )
    quasi = [c.name for c in cols if c.name not in schema.sensitive]
    out: list[MetricRecord] = []
    with _quiet():
        so = partial(
            SinglingOutEvaluator,
            ori=ori,
            syn=syn,
            n_attacks=n,
            n_cols=min(3, len(cols)),
            control=ctl,
            max_attempts=20 * n,
            seed=a_seed,
        )
        out.append(_run("singling_out_risk", so, None, {**sizes, "n_cols": min(3, len(cols))}))
        out.append(
            _linkability(
                LinkabilityEvaluator, ori, syn, ctl, quasi=quasi, safe=safe, n=n, sizes=sizes
            )
        )
        out += _inference(
            InferenceEvaluator,
            ori,
            syn,
            ctl,
            secrets=secrets,
            schema=schema,
            cols=cols,
            safe=safe,
            n=n,
            sizes=sizes,
        )
    return out


def _linkability(
    evaluator: Callable[..., Any],
    ori: pd.DataFrame,
    syn: pd.DataFrame,
    ctl: pd.DataFrame,
    *,
    quasi: list[str],
    safe: dict[str, str],
    n: int,
    sizes: dict[str, Any],
) -> MetricRecord:
    """The linkability risk: the quasi-identifiers split in two halves, linked through ``syn``."""
    if len(quasi) < 2:
        return _na("linkability_risk", "linkability needs at least 2 quasi-identifier columns")
    half = len(quasi) // 2
    aux = ([safe[q] for q in quasi[:half]], [safe[q] for q in quasi[half:]])
    lk = partial(
        evaluator,
        ori=ori,
        syn=syn,
        aux_cols=aux,
        n_attacks=n,
        n_neighbors=1,
        control=ctl,
    )
    details = {**sizes, "aux_cols": [quasi[:half], quasi[half:]], "n_neighbors": 1}
    return _run("linkability_risk", lk, None, details)


def _inference(
    evaluator: Callable[..., Any],
    ori: pd.DataFrame,
    syn: pd.DataFrame,
    ctl: pd.DataFrame,
    *,
    secrets: list[str],
    schema: Schema,
    cols: list[Any],
    safe: dict[str, str],
    n: int,
    sizes: dict[str, Any],
) -> list[MetricRecord]:
    """One inference risk per secret (the sensitive columns, else the target)."""
    out: list[MetricRecord] = []
    if not secrets:
        out.append(
            _na(
                "inference_risk",
                "no sensitive or target column: name one with --sensitive",
            )
        )
    for secret in secrets:
        aux_cols = [safe[c.name] for c in cols if c.name != secret]
        if not aux_cols:
            out.append(_na("inference_risk", "no other column to infer from", subgroup=secret))
            continue
        ie = partial(
            evaluator,
            ori=ori,
            syn=syn,
            aux_cols=aux_cols,
            secret=safe[secret],
            regression=schema[secret].kind in ("numeric", "integer", "datetime"),
            n_attacks=n,
            control=ctl,
        )
        out.append(_run("inference_risk", ie, secret, {**sizes, "secret": secret}))
    return out


def _run(
    name: str, make: Callable[[], Any], subgroup: str | None, details: dict[str, Any]
) -> MetricRecord:
    """Build and evaluate one Anonymeter evaluator and turn its results into a record."""
    try:
        evaluator = make()
        if name == "singling_out_risk":
            evaluator.evaluate(mode="multivariate")
        else:
            evaluator.evaluate(n_jobs=1)
        res = evaluator.results(confidence_level=0.95)
        risk = res.risk()
    except Exception as e:  # Anonymeter refuses some data (e.g. too few distinct queries)
        return _na(name, f"Anonymeter could not run: {type(e).__name__}: {e}", subgroup=subgroup)
    details = {
        **details,
        "attack_rate": float(res.attack_rate.value),
        "attack_rate_error": float(res.attack_rate.error),
        "baseline_rate": float(res.baseline_rate.value),
        "baseline_rate_error": float(res.baseline_rate.error),
        "control_rate": None if res.control_rate is None else float(res.control_rate.value),
        "control_rate_error": None if res.control_rate is None else float(res.control_rate.error),
        "n_success": int(res.n_success),
        "n_baseline": int(res.n_baseline),
    }
    if res.baseline_rate.value >= res.attack_rate.value:
        details["note"] = "the attack did no better than random guessing: the risk is unreliable"
    return MetricRecord(
        name=name,
        dimension="privacy",
        value=float(risk.value),
        direction="lower",
        subgroup=subgroup,
        interval=(float(risk.ci[0]), float(risk.ci[1])),
        reference=0.0,
        details=details,
    )


def _na(name: str, why: str, subgroup: str | None = None) -> MetricRecord:
    return not_applicable(name, "privacy", why, direction="lower", subgroup=subgroup)


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence Anonymeter's warnings and log output for the duration of the block only."""
    logger = logging.getLogger("anonymeter")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _prepare(df: pd.DataFrame, cols: list[Any], safe: dict[str, str]) -> pd.DataFrame:
    """Numbers as floats (datetimes as days), categories as strings, missing as None/NaN."""
    out = {}
    for c in cols:
        s = df[c.name]
        if c.kind in ("numeric", "integer"):
            out[safe[c.name]] = pd.to_numeric(s, errors="coerce").astype(float).to_numpy()
        elif c.kind == "datetime":
            t = pd.to_datetime(s, errors="coerce")
            days = (t - pd.Timestamp("1970-01-01")).dt.total_seconds() / 86400.0
            out[safe[c.name]] = days.astype(float).to_numpy()
        else:
            out[safe[c.name]] = np.array([_label(v) for v in s.astype(object)], dtype=object)
    return pd.DataFrame(out).reset_index(drop=True)


def _label(v: Any) -> str | None:
    if v is None or v is pd.NA or (isinstance(v, (float, np.floating)) and np.isnan(v)):
        return None
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)
