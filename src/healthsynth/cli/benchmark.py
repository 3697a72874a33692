"""``healthsynth benchmark``: generators × datasets × training sizes × seeds, resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from healthsynth.cli._app import app, err, quiet_transformers, say, user_errors
from healthsynth.cli._engine import EngineOption, RayAddressOption
from healthsynth.errors import ParameterError

__all__ = ["benchmark"]

_MARK = {"ok": ("ok", "green"), "timeout": ("timeout", "yellow")}


@app.command()
@user_errors
def benchmark(
    config: Annotated[
        str,
        typer.Argument(
            help="Benchmark config (YAML file) or a packaged one: default, class-imbalance, "
            "health-equity, data-efficiency, dp."
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder.")],
    workers: Annotated[
        int | None, typer.Option(help="Cells run at once (default: the config's, else 1).")
    ] = None,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Run failed and timed-out cells again.")
    ] = False,
    summary_only: Annotated[
        bool, typer.Option("--summary-only", help="Only rebuild the summary from finished cells.")
    ] = False,
    engine: EngineOption = "local",
    ray_address: RayAddressOption = None,
) -> None:
    """Fit, sample and evaluate generators × datasets × training sizes × seeds.

    A rerun on the same output folder resumes: finished cells are kept. With --engine ray
    each cell is a Ray task (--workers at once), written to the same cell folders.
    """
    quiet_transformers()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from healthsynth.benchmark import (
        load_config,
        plan,
        run_benchmark,
        training_rows,
        write_summary,
    )

    cfg = load_config(config)
    if workers is not None and workers < 1:
        raise ParameterError(f"--workers must be at least 1; got {workers}")
    # --workers keeps its meaning (cells at once); only the engine flags are checked here
    from healthsynth.cli._engine import engine_settings

    engine_settings(engine, ray_address, None)
    if summary_only:
        files = write_summary(output, cfg, plan(cfg, training_rows(cfg)))
        say(f"summary in {files['leaderboard']} and {files['report']}")
        return
    counts = {"ok": 0, "failed": 0, "timeout": 0}
    with Progress(
        TextColumn("{task.description}", markup=False, style="bold"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[running]}", markup=False),
        console=err,
        transient=False,
    ) as progress:
        task = progress.add_task(cfg.name, total=len(plan(cfg, training_rows(cfg))), running="")
        running: list[str] = []

        def on_event(kind: str, cell: Any, info: Any) -> None:
            if kind == "skip":
                progress.advance(task)
                return
            if kind == "start":
                running.append(cell.label())
            else:
                running.remove(cell.label())
                status = info.get("status", "failed")
                counts[status] = counts.get(status, 0) + 1
                progress.advance(task)
                word, style = _MARK.get(status, ("failed", "red"))
                extra = f": {info.get('error')}" if status != "ok" else ""
                seconds = info.get("seconds")
                took = f" in {seconds:.0f} s" if isinstance(seconds, (int, float)) else ""
                progress.console.print(
                    Text.assemble(f"{cell.label()}: ", (word, style), f"{took}{extra}"),
                    soft_wrap=True,
                )
            progress.update(task, running="; ".join(running))

        run = run_benchmark(
            cfg,
            output,
            workers=workers,
            retry_failed=retry_failed,
            on_event=on_event,
            engine=engine,
            ray_address=ray_address,
        )
        progress.update(task, running="")
    say(
        f"{run.cells} cells: {run.skipped} already done, {run.ran} run "
        f"({', '.join(f'{v} {k}' for k, v in counts.items() if v)}) in {run.seconds:.0f} s"
    )
    say(f"results in {run.files['results']}, {run.files['leaderboard']} and {run.files['report']}")
