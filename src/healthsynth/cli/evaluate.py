"""``healthsynth evaluate``: score synthetic data against real data; writes the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from healthsynth.cli._app import app, out, say, split_names, user_errors, warn_line
from healthsynth.cli._engine import EngineOption, RayAddressOption, WorkersOption, engine_settings
from healthsynth.errors import ParameterError

__all__ = ["evaluate"]


@app.command()
@user_errors
def evaluate(
    real: Annotated[
        Path,
        typer.Option(help="The real rows the generator was trained on (a folder for timelines)."),
    ],
    synthetic: Annotated[
        Path, typer.Option(help="The synthetic rows to evaluate (a folder for timelines).")
    ],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Report folder to write.")],
    holdout: Annotated[
        Path | None, typer.Option(help="Real rows the generator never saw (the reference).")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Target column for utility.")] = None,
    sensitive: Annotated[
        str | None, typer.Option(help="Sensitive columns defining subgroups, comma-separated.")
    ] = None,
    rules: Annotated[Path | None, typer.Option(help="Clinical rules file (YAML).")] = None,
    model: Annotated[
        Path | None, typer.Option(help="Model folder: its schema and training record are used.")
    ] = None,
    metrics: Annotated[
        str | None, typer.Option(help="Only these metrics, comma-separated (default: all).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    encoding: Annotated[str, typer.Option(help="Text encoding of CSV files.")] = "utf-8",
    engine: EngineOption = "local",
    ray_address: RayAddressOption = None,
    workers: WorkersOption = None,
    subsample: Annotated[
        int,
        typer.Option(
            help="A folder of Parquet shards, or --engine ray: synthetic rows the metrics that "
            "do not run over every row see (a seeded subsample)."
        ),
    ] = 100_000,
    dcr_rows: Annotated[
        int,
        typer.Option(
            help="A folder of Parquet shards, or --engine ray: synthetic rows whose distance to "
            "the closest record is queried (a seeded share of each block; at least the row "
            "count queries every row). Exact copies are counted on every row."
        ),
    ] = 100_000,
) -> None:
    """Evaluate synthetic rows against real ones: writes report.html and scores.json.

    A folder of Parquet shards (sample --engine ray) is scored block by block: column
    distance, DCR, TSTR and rule violations over every row (on Ray workers with --engine ray),
    the other metrics on a seeded subsample of --subsample rows.
    """
    from healthsynth.data import check_output_folder

    engine, ray_address, workers_n = engine_settings(engine, ray_address, workers)
    inputs = [p for p in (real, synthetic, holdout, model) if p is not None]
    check_output_folder(out_dir, action="write the report", protected=_files(inputs), kind="report")
    if not real.is_dir() and (engine == "ray" or synthetic.is_dir()):
        scale = {"engine": engine, "workers": workers_n, "address": ray_address}
        result = _tables(
            real,
            synthetic,
            holdout,
            target,
            sensitive,
            rules,
            model,
            metrics,
            seed,
            encoding,
            scale={**scale, "subsample": subsample, "dcr_rows": dcr_rows},
        )
    elif real.is_dir():
        if engine == "ray":
            raise ParameterError(
                "--engine ray evaluates tables (a folder of Parquet shards or a file); evaluate "
                "timelines with --engine local"
            )
        for flag, value in (("--target", target), ("--sensitive", sensitive), ("--rules", rules)):
            if value is not None:
                raise ParameterError(f"{flag} does not apply to timelines (folders); leave it out")
        result = _timelines(real, synthetic, holdout, model, metrics, seed)
    else:
        result = _tables(
            real, synthetic, holdout, target, sensitive, rules, model, metrics, seed, encoding
        )
    from healthsynth.report import scorecard_table, write_report

    path = write_report(result, out_dir)
    out.print(scorecard_table(result))
    statuses = [r["status"] for r in result["records"]]
    say(
        f"{statuses.count('ok')} scores, {statuses.count('not_applicable')} not applicable, "
        f"{statuses.count('failed')} failed, in {result['seconds']:.0f} s → {path}"
    )


def _files(paths: list[Path]) -> list[Path]:
    """The files among ``paths`` and inside the folders among them."""
    found: list[Path] = []
    for p in paths:
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            found += [f for f in p.rglob("*") if f.is_file()]
    return found


def _run_record(path: Path) -> dict[str, Any] | None:
    """A sample's run record, or None (with a warning when it exists but cannot be read)."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        warn_line(f"{path} is not a readable run record; ignored")
        return None
    return data if isinstance(data, dict) else None


def _tables(
    real: Path,
    synthetic: Path,
    holdout: Path | None,
    target: str | None,
    sensitive: str | None,
    rules: Path | None,
    model: Path | None,
    metrics: str | None,
    seed: int,
    encoding: str,
    *,
    scale: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from healthsynth.data import Schema, read_table
    from healthsynth.evaluate import evaluate as run_evaluation

    real_df = read_table(real, encoding=encoding)
    syn_df = read_table(synthetic, encoding=encoding) if scale is None else None
    hold_df = read_table(holdout, encoding=encoding) if holdout is not None else None
    schema = training = None
    if model is not None:
        from healthsynth.generators.folders import check_folder, read_json

        check_folder(model)
        schema = Schema.load(model / "schema.json")
        training = read_json(model / "training.json", model)
    ruleset = None
    if rules is not None:
        from healthsynth.knowledge import load_rules

        ruleset = load_rules(rules)
    if synthetic.is_dir():
        sampling = _run_record(synthetic / "_run.json")
    else:
        sampling = _run_record(synthetic.with_name(synthetic.name + ".run.json"))
    # what the one-process and the scale-out evaluation are both given
    common: dict[str, Any] = {
        "real": real_df,
        "holdout": hold_df,
        "schema": schema,
        "target": target,
        "sensitive": split_names(sensitive),
        "rules": ruleset,
        "training": training,
        "sampling": sampling,
        "metrics": split_names(metrics) or None,
        "seed": seed,
        "sources": {"real": str(real), "synthetic": str(synthetic), "holdout": str(holdout)},
    }
    if scale is not None:
        from healthsynth.scale.evaluate import evaluate_shards

        result = evaluate_shards(
            synthetic=synthetic,
            engine=scale["engine"],
            workers=scale["workers"],
            address=scale["address"],
            subsample=scale["subsample"],
            dcr_rows=scale["dcr_rows"],
            **common,
        )
        return _checked(result)
    result = run_evaluation(synthetic=syn_df, examples=_prompt_examples(model, sampling), **common)
    return _checked(result)


def _checked(result: dict[str, Any]) -> dict[str, Any]:
    """Warn about the inputs; refuse a result where no metric could say anything."""
    from healthsynth.errors import DataError

    for w in result["meta"]["warnings"]:
        warn_line(w)
    if not any(r["status"] == "ok" for r in result["records"]):
        reasons = sorted({r["message"] for r in result["records"] if r["message"]})
        raise DataError(
            "nothing could be evaluated: "
            + ("; ".join(reasons[:3]) if reasons else "no metric applies to these tables")
        )
    return result


def _prompt_examples(model: Path | None, sampling: Any) -> Any:
    """The real rows a prompted-LLM run showed the model (for the regurgitation probe)."""
    llm = sampling.get("llm") if isinstance(sampling, dict) else None
    if model is None or not isinstance(llm, dict) or not llm.get("example_rows"):
        return None
    from healthsynth.generators import load_generator
    from healthsynth.generators.folders import check_folder

    # only a prompted-llm folder knows its examples (and it holds no pickle): evaluate never
    # loads a folder that could run code, so it needs no --trust-pickle
    _, meta = check_folder(model)
    if meta.get("generator") != "prompted-llm":
        warn_line(
            f"the run record names LLM example rows but model folder {model} holds a "
            f"'{meta.get('generator')}' model; the regurgitation probe is left out"
        )
        return None
    return load_generator(model).examples_sent(llm)


def _timelines(
    real: Path,
    synthetic: Path,
    holdout: Path | None,
    model: Path | None,
    metrics: str | None,
    seed: int,
) -> dict[str, Any]:
    """Evaluate synthetic timelines (folders of tables) against real ones."""
    from healthsynth.cli._tables import read_dataset
    from healthsynth.evaluate import evaluate_timelines
    from healthsynth.generators.folders import check_folder, check_folder_names, read_json

    if model is None:
        raise ParameterError(
            f"--real {real} is a folder of timeline tables: give --model MODEL_DIR too, whose "
            "generator.json says which tables, key and time columns they have"
        )
    folder, meta = check_folder(model)
    template = meta.get("template")
    roles = template.get("roles") if isinstance(template, dict) else None
    if not isinstance(roles, dict) or not isinstance(roles.get("tables"), list):
        raise ParameterError(f"model folder {model} does not hold a timeline model")
    # the folder's table names become file names to read in --real/--synthetic/--holdout
    check_folder_names(folder, roles["tables"])

    def read(where: Path, what: str) -> Any:
        if not where.is_dir():
            raise ParameterError(f"--{what} {where} must be a folder of tables, like --real")
        paths = {}
        for name in roles["tables"]:
            found = [where / f"{name}.{ext}" for ext in ("csv", "parquet")]
            found = [f for f in found if f.exists()]
            if not found:
                raise ParameterError(
                    f"--{what} folder {where} has no {name}.csv or {name}.parquet; it needs the "
                    f"tables {', '.join(roles['tables'])}"
                )
            paths[name] = found[0]
        return read_dataset(paths, roles)

    code_map = None
    if (folder / "code_map.json").exists():
        from healthsynth.knowledge import CodeMap

        code_map = CodeMap.from_dict(read_json(folder / "code_map.json", folder))
    return evaluate_timelines(
        real=read(real, "real"),
        synthetic=read(synthetic, "synthetic"),
        holdout=read(holdout, "holdout") if holdout is not None else None,
        code_map=code_map,
        metrics=split_names(metrics) or None,
        seed=seed,
        training=read_json(folder / "training.json", folder),
        sampling=_run_record(synthetic / "run.json"),
        sources={"real": str(real), "synthetic": str(synthetic), "holdout": str(holdout)},
    )
