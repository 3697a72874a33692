"""Which label model tabular-lm fits: on or off, which kind, private or not."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.errors import ParameterError
from healthsynth.generators.tabular_lm._sampling import row_checks

__all__ = ["LABEL_MODEL_MAX_ROWS", "choose_label_model", "relabel"]

#: Below this many rows, ``label_model=None`` fits the label model (docs/small-data.md).
LABEL_MODEL_MAX_ROWS = 3000


def choose_label_model(
    setting: bool | None,
    data: pd.DataFrame,
    schema: Schema,
    *,
    budget: Any = None,
    kind: str = "auto",
    seed: int | None = 0,
) -> tuple[Any, str, Any]:
    """The label model ``setting`` asks for on ``data``, a note, and a DP plan (or None).

    Under differential privacy the model is not fitted here: the plan splits ``budget``, and
    :meth:`TabularLM._fit_private_label_model` trains it after the network.
    """
    from healthsynth.generators._label_model import LabelModel

    reason = LabelModel.why_not(data, schema)
    if setting is None:  # automatic: on for small tables with a categorical target
        if reason is not None:
            return None, f"off (automatic: {reason})", None
        if len(data) >= LABEL_MODEL_MAX_ROWS:
            return (
                None,
                f"off (automatic: {len(data)} rows, at least {LABEL_MODEL_MAX_ROWS})",
                None,
            )
        why = f"automatic: fewer than {LABEL_MODEL_MAX_ROWS} rows"
    elif not setting:
        return None, "off", None
    else:
        if reason is not None:
            raise ParameterError(
                f"label_model needs a categorical or boolean target with two classes or more, "
                f"but {reason}; declare the target (--target COLUMN) or leave label_model off"
            )
        why = ""
    if budget is None:
        model = LabelModel.fit(data, schema, kind=kind, seed=seed)
        if model.selection is not None:  # kind "auto": say what chose it
            scores = ", ".join(f"{k} {v:.4f}" for k, v in model.selection.items())
            chosen = (
                f"{model.kind} chosen by five-fold log-loss ({scores})"
                if scores
                else f"{model.kind}: a class too rare to compare kinds on held-out rows"
            )
            why = f"{why}; {chosen}" if why else chosen
        return model, f"on ({why})" if why else "on", None
    if kind in ("boosted", "spline"):
        raise ParameterError(
            f"label_kind '{kind}' cannot be trained with differential privacy; use "
            "label_kind 'logistic' or 'auto' (the default, which is logistic under "
            "dp_epsilon) with dp_epsilon"
        )
    from healthsynth.generators._label_model_dp import DP_LABEL_SHARE, plan_private_label_model

    try:
        plan = plan_private_label_model(budget, data, schema)
    except ParameterError as e:
        if setting:
            raise
        return None, f"off (automatic: {str(e).split(';')[0]})", None
    how = f"trained with DP-SGD on {DP_LABEL_SHARE:.0%} of the privacy budget"
    return None, f"on ({why}; {how})" if why else f"on ({how})", plan


def relabel(gen: Any, df: pd.DataFrame, seed: int | None) -> pd.DataFrame:
    """Redraw the target of a ``label_share`` of ``gen``'s sampled rows from its label model.

    A redrawn row that would break a rule keeps the model's own target.
    """
    rng = np.random.default_rng(None if seed is None else [seed, 0x1ABE1])
    target = gen.label_model_.target
    drawn = gen.label_model_.draw(df, rng)
    change = rng.random(len(df)) < gen.label_share
    out = df.copy()
    values = out[target].astype(object)
    values[change] = drawn[change]
    out[target] = pd.Series(values, index=out.index).astype(df[target].dtype)
    checks = row_checks(gen)
    if checks is not None:
        bad = checks.violations(out).to_numpy().any(axis=1)
        out.loc[bad, target] = df.loc[bad, target]
    return out
