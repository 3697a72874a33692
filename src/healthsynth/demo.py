"""The demo: fit ``tabular-lm`` on a real health dataset, sample, and evaluate against real rows.

Outputs: ``model/`` (the model folder), ``synthetic.csv``, ``report/report.html`` and
``report/scores.json`` (the full evaluation), and ``comparison.json`` (a summary).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import infer_schema, load_dataset, train_holdout_split, write_table

__all__ = ["run_demo"]

_EXAMPLES = Path(__file__).parent / "knowledge" / "examples"


def run_demo(
    *,
    output: Path,
    dataset: str = "survival/nafld1",
    target: str | None = "status",
    sensitive: list[str] | None = None,
    max_time: float = 150.0,
    seed: int = 0,
    rules: Any = "auto",
    console: Any = None,
) -> dict[str, Any]:
    """Run the demo end to end; returns the comparison (also written to ``comparison.json``).

    ``rules`` is a rule set (or YAML path) the generator must respect and the report counts;
    ``"auto"`` uses the packaged rules of the dataset when there are some, None uses none.
    """
    from healthsynth.data import atomic_folder

    output = Path(output)
    with atomic_folder(output, action="write the demo's outputs", kind="demo") as tmp:
        return _run(tmp, output, dataset, target, sensitive, max_time, seed, rules, console)


def _run(
    output: Path,
    final: Path,
    dataset: str,
    target: str | None,
    sensitive: list[str] | None,
    max_time: float,
    seed: int,
    rules: Any,
    console: Any,
) -> dict[str, Any]:
    from rich.table import Table

    from healthsynth.evaluate import evaluate
    from healthsynth.generators.tabular_lm import TabularLM
    from healthsynth.knowledge import load_rules
    from healthsynth.report import scorecard_table, write_report

    start = time.perf_counter()
    say = console.print if console is not None else (lambda *a, **k: None)
    df = load_dataset(dataset)
    schema = infer_schema(df, target=target, sensitive=sensitive or [], source=dataset)
    train, holdout = train_holdout_split(df, holdout=0.2, seed=seed)
    say(
        f"{dataset}: {len(df):,} real rows × {df.shape[1]} columns; training on "
        f"{len(train):,}, holding out {len(holdout):,} to compare against"
    )
    if isinstance(rules, str) and rules == "auto":
        packaged = _EXAMPLES / f"{dataset.split('/')[-1]}.yaml"
        rules = packaged if packaged.exists() else None
    ruleset = load_rules(rules) if isinstance(rules, (str, Path)) else rules
    if ruleset is not None:
        say(f"{len(ruleset)} clinical rules: every sampled row must satisfy them")
    model = TabularLM(max_time=max_time, seed=seed, verbose=console is not None)
    model.fit(train, schema=schema, rules=ruleset)
    model.save(output / "model")
    t0 = time.perf_counter()
    synthetic = model.sample(len(train), seed=seed)
    sample_seconds = time.perf_counter() - t0
    write_table(synthetic, output / "synthetic.csv")
    rec = model.training_record_
    say(
        f"fitted in {rec['fit_seconds']:.0f} s ({rec['epochs_run']} epochs, "
        f"{rec['n_parameters']:,} parameters); sampled {len(synthetic):,} rows in "
        f"{sample_seconds:.1f} s ({len(synthetic) / sample_seconds:,.0f} rows/s)"
    )

    table = Table("column", "real (train)", "synthetic", "real holdout", title="Columns")
    for c in schema.modelled:
        table.add_row(c.name, *(_summary(f[c.name], c.kind) for f in (train, synthetic, holdout)))
    say(table)

    scores = evaluate(
        real=train,
        synthetic=synthetic,
        holdout=holdout,
        schema=schema,
        rules=ruleset,
        training=rec,
        sampling={
            "seconds": round(sample_seconds, 3),
            "rows_per_second": round(len(synthetic) / sample_seconds, 1),
            "peak_rss_mb": rec["peak_rss_mb"],
        },
        seed=seed,
        sources={"real": f"{dataset} (training split)", "synthetic": "tabular-lm",
                 "holdout": f"{dataset} (holdout split)"},
    )  # fmt: skip
    report = final / write_report(scores, output / "report").relative_to(output)
    say(scorecard_table(scores))
    say(f"evaluated in {scores['seconds']:.0f} s; report: {report}")
    result = {
        "dataset": dataset,
        "n_train": len(train),
        "n_holdout": len(holdout),
        "n_synthetic": len(synthetic),
        "fit_seconds": rec["fit_seconds"],
        "sample_seconds": round(sample_seconds, 3),
        "sample_rows_per_second": round(len(synthetic) / sample_seconds, 1),
        "peak_rss_mb": rec["peak_rss_mb"],
        "report": str(report),
        "scores": scores,
        "schema": schema.to_dict(),
    }
    result["seconds"] = round(time.perf_counter() - start, 1)
    (output / "comparison.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    return result


def _summary(s: pd.Series, kind: str) -> str:
    miss = f", {s.isna().mean():.0%} missing" if s.isna().any() else ""
    present = s.dropna()
    if len(present) == 0:
        return "all missing"
    if kind in ("categorical", "boolean"):
        shares = present.astype(str).value_counts(normalize=True).head(3)
        return ", ".join(f"{k}: {v:.0%}" for k, v in shares.items()) + miss
    x = pd.to_numeric(present, errors="coerce").to_numpy(float)
    return f"{np.mean(x):.4g} ± {np.std(x):.3g}{miss}"
