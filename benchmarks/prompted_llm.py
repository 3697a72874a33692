#!/usr/bin/env python
"""Benchmark: the ``prompted-llm`` pipeline on 40 real rows of MASS/Pima.tr.

What it measures is the pipeline, not a language model: by default the endpoint is
``healthsynth.llm.testing.ChatServer`` on 127.0.0.1, whose scripted "model" writes rows drawn
from the real Pima.tr table (200 women; it plays a model that has seen such data), with 5%
relative noise on every number, the outcome flipped in 20% of rows and an out-of-domain value in
5% of rows — the error kinds the checks and the curation exist for. Every request still goes
through the real SDK, HTTP, retries, budget, cache and audit log. Give ``--endpoint`` and
``--llm-model`` to run the same steps against a real server (Ollama, vLLM, llama.cpp, OpenAI).

Runs, each fitted on the same 40 training rows and evaluated against Pima.te (332 women never
shown to the model):

* ``cllm``, ``balanced`` and ``zero-shot`` prompts, with curation;
* ``cllm`` without curation (what the curation is worth when the model mislabels rows);
* ``cllm`` against a model that recites real rows verbatim (what the copy filter catches);
* ``cllm`` with the old domains: the 40 rows' own extremes, stated in the prompt (``widen=0,
  reveal_ranges=True``).

The schema is inferred from the 40 training rows, as ``healthsynth fit`` does
(``--schema-from population`` infers it from all 200 rows of Pima.tr instead, as the benchmark
did before column domains existed).

Per run: requests, tokens, seconds, what was dropped and why, curation counts, and the
evaluation's TSTR AUC, column distance and regurgitation shares.

A second experiment measures the domains alone (issue 19): for Pima.tr and survival/gbsg, 40
real rows, a server answering with *genuine* rows of the whole table (no noise) in JSON mode
(so it is not held to the ranges, as a model is not), no curation; the share of parsed rows
dropped as out of domain, with the default domains and with the 40 rows' extremes.

A third, with no server at all, is why the default widening is three standard deviations: for
five real tables, 20 draws of 40 rows each, the share of the whole table's rows that fall
outside the domain of at least one numeric column, for ``widen`` 0, 1, 2 and 3.

Writes ``results.json``, ``domains.json`` and ``summary.md`` into ``--out``.

    .venv/bin/python benchmarks/prompted_llm.py --out docs/prompted-llm-results
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from healthsynth.data import infer_schema, load_dataset
from healthsynth.evaluate import evaluate
from healthsynth.generators.prompted_llm import PromptedLLM
from healthsynth.llm.testing import ChatServer, RowReplier

DESCRIPTION = (
    "Women of Pima Indian heritage, aged 21 or older, living near Phoenix, Arizona, tested for "
    "diabetes according to World Health Organization criteria (US National Institute of "
    "Diabetes and Digestive and Kidney Diseases)."
)
COLUMNS = {
    "npreg": "number of pregnancies",
    "glu": "plasma glucose concentration in an oral glucose tolerance test",
    "bp": "diastolic blood pressure, mm Hg",
    "skin": "triceps skin fold thickness, mm",
    "bmi": "body mass index, kg/m2",
    "ped": "diabetes pedigree function",
    "age": "age in years",
    "type": "diabetic according to WHO criteria",
}
METRICS = ["tstr", "column_distance", "regurgitation", "cost"]
#: what results.json keeps of each evaluation record (the details would make it megabytes)
RECORD_KEYS = ("name", "dimension", "subgroup", "value", "interval", "reference", "status")


def pick(records: list[dict], name: str, field: str = "value") -> float | None:
    for r in records:
        if r["name"] == name and r.get("subgroup") in (None, "all"):
            return r.get(field)
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--rows", type=int, default=40, help="real training rows")
    ap.add_argument("-n", type=int, default=200, help="synthetic rows per run")
    ap.add_argument("--examples", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=5, help="repeats (training subset and sampling)")
    ap.add_argument("--endpoint", help="a real OpenAI-compatible server instead of the script")
    ap.add_argument("--llm-model", default="test-model")
    ap.add_argument(
        "--schema-from",
        choices=("train", "population"),
        default="train",
        help="infer the schema from the training rows (default) or all of Pima.tr",
    )
    ap.add_argument(
        "--only",
        action="append",
        help="a run label to run (repeatable, e.g. --only cllm); skips the domain experiments",
    )
    args = ap.parse_args()

    pool = load_dataset("MASS/Pima.tr")
    holdout = load_dataset("MASS/Pima.te")
    noisy = {"flip": {"type": 0.2}, "invalid": 0.05}
    old_domains = {"widen": 0, "reveal_ranges": True}
    runs = [
        ("cllm", {"prompt": "cllm"}, noisy),
        ("balanced", {"prompt": "balanced"}, noisy),
        ("zero-shot", {"prompt": "zero-shot"}, noisy),
        ("cllm, no curation", {"prompt": "cllm", "curate": False}, noisy),
        ("cllm, reciting model", {"prompt": "cllm"}, {"jitter": 0.0}),
        ("cllm, observed extremes", {"prompt": "cllm", **old_domains}, noisy),
    ]
    if args.only:
        unknown = sorted(set(args.only) - {r[0] for r in runs})
        if unknown:
            ap.error(f"unknown run {unknown[0]!r}; runs: {', '.join(r[0] for r in runs)}")
        runs = [r for r in runs if r[0] in args.only]
    results = []
    work = Path(tempfile.mkdtemp(prefix="hs-prompted-"))
    for seed, (label, params, noise) in ((seed, run) for seed in range(args.seeds) for run in runs):
        train = pool.sample(args.rows, random_state=seed).reset_index(drop=True)
        schema = infer_schema(train if args.schema_from == "train" else pool, target="type")
        with ExitStack() as stack:
            if args.endpoint:
                url = args.endpoint
            else:
                url = stack.enter_context(ChatServer(RowReplier(pool, **noise))).url
            gen = PromptedLLM(
                endpoint=url,
                llm_model=args.llm_model,
                examples=args.examples,
                description=DESCRIPTION,
                column_descriptions=COLUMNS,
                audit_log=str(work / f"{label}.{seed}.audit.jsonl"),
                seed=seed,
                **params,
            )
            t0 = time.perf_counter()
            gen.fit(train, schema=schema)
            fit_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                synthetic = gen.sample(args.n, seed=seed)
            sample_s = time.perf_counter() - t0
        rec = dict(gen.sampling_record_)
        examples = train.iloc[rec["example_rows"]]
        ev = evaluate(
            real=train,
            synthetic=synthetic,
            holdout=holdout,
            schema=schema,
            training=gen.training_record_,
            sampling=rec,
            examples=examples,
            metrics=METRICS,
            seed=seed,
        )
        r = ev["records"]
        results.append(
            {
                "run": label,
                "seed": seed,
                "fit_seconds": round(fit_s, 2),
                "sample_seconds": round(sample_s, 2),
                "warnings": [str(w.message) for w in caught],
                "tstr_auc": pick(r, "tstr_auc"),
                "tstr_auc_reference": pick(r, "tstr_auc", "reference"),
                "column_distance": pick(r, "column_distance"),
                "exact_copy_share": pick(r, "exact_copy_share"),
                "near_copy_share": pick(r, "near_copy_share"),
                "near_copy_reference": pick(r, "near_copy_share", "reference"),
                "example_near_copy_share": pick(r, "example_near_copy_share"),
                "sampling": {k: v for k, v in rec.items() if k != "example_rows"},
                "records": [{k: x.get(k) for k in RECORD_KEYS} for x in r],
            }
        )
        print(f"{label}, seed {seed}: done in {sample_s:.1f} s", flush=True)

    domain_results = [] if args.endpoint or args.only else domain_drops(args, work)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    (args.out / "domains.json").write_text(json.dumps(domain_results, indent=1, default=str))

    def mean_sd(values: list, d: int = 3) -> str:
        v = np.array([np.nan if x is None else x for x in values], float)
        v = v[~np.isnan(v)]
        if not len(v):
            return "n/a"
        return f"{v.mean():.{d}f} ± {v.std(ddof=1):.{d}f}" if len(v) > 1 else f"{v[0]:.{d}f}"

    def mean(values: list) -> str:
        return f"{np.mean(values):,.0f}"

    lines = [
        f"# prompted-llm on {args.rows} rows of MASS/Pima.tr",
        "",
        f"Command: `.venv/bin/python benchmarks/prompted_llm.py --out {args.out}"
        + (f" --schema-from {args.schema_from}" if args.schema_from != "train" else "")
        + (f" --seeds {args.seeds}" if args.seeds != 5 else "")
        + "".join(f" --only '{o}'" for o in args.only or ())
        + "`"
        + (f" (endpoint {args.endpoint}, model {args.llm_model})" if args.endpoint else ""),
        "",
        f"{args.seeds} repeats (seeds 0-{args.seeds - 1}: a different set of {args.rows} "
        f"training rows and a different sampling seed each), {args.n} synthetic rows per run, "
        f"{args.examples} examples per prompt, evaluated against MASS/Pima.te "
        f"({len(holdout)} rows). Schema inferred from "
        + (
            f"the {args.rows} training rows"
            if args.schema_from == "train"
            else "all 200 rows of Pima.tr"
        )
        + ". Endpoint: "
        + (
            args.endpoint
            if args.endpoint
            else "the scripted 127.0.0.1 server (rows drawn from the 200 rows of Pima.tr; 5% "
            "noise on numbers, outcome flipped in 20% of rows, 5% out-of-domain values; the "
            "reciting run copies rows verbatim)"
        )
        + ". Means over the repeats; ± is the standard deviation.",
        "",
        "| run | requests | tokens in / out | seconds | rows parsed | invalid (out of domain) | "
        "copies | curation easy / ambiguous / hard | TSTR AUC | TSTR AUC, real rows | "
        "near-copy share | holdout's share |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, _, _ in runs:
        xs = [x for x in results if x["run"] == label]
        ss = [x["sampling"] for x in xs]
        cs = [s["curation"] for s in ss]
        cur = (
            " / ".join(mean([c[g] for c in cs]) for g in ("easy", "ambiguous", "hard"))
            if not cs[0].get("skipped")
            else f"skipped ({cs[0]['skipped']})"
        )
        lines.append(
            f"| {label} | {mean([s['requests'] for s in ss])} | "
            f"{mean([s['tokens_in'] for s in ss])} / {mean([s['tokens_out'] for s in ss])} | "
            f"{np.mean([x['sample_seconds'] for x in xs]):.1f} | "
            f"{mean([s['rows_parsed'] for s in ss])} | {mean([s['rows_invalid'] for s in ss])} "
            f"({mean([s['rows_out_of_domain'] for s in ss])}) | "
            f"{mean([s['copies_of_examples'] for s in ss])} + "
            f"{mean([s['copies_of_training'] for s in ss])} | {cur} | "
            f"{mean_sd([x['tstr_auc'] for x in xs])} | "
            f"{mean_sd([x['tstr_auc_reference'] for x in xs])} | "
            f"{mean_sd([x['near_copy_share'] for x in xs])} | "
            f"{mean_sd([x['near_copy_reference'] for x in xs])} |"
        )
    lines += [
        "",
        "Copies: rows equal to a prompt example + rows equal to another training row (both "
        "dropped before curation). TSTR AUC: a gradient-boosting model trained on the synthetic "
        "rows, tested on Pima.te; the next column trains it on the real training rows instead. "
        "Near-copy share: synthetic rows within τ of a training row, τ being the distance "
        "within which the closest 5% of Pima.te rows lie; the next column is Pima.te's own "
        "share. Invalid: rows outside the schema, of which (out of domain) outside a column's "
        "domain; the noisy model writes a value far outside in 5% of rows.",
    ]
    if domain_results:
        lines += domain_lines(domain_results, args)
    if not args.only:
        lines += coverage_lines(args.rows)
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


DOMAIN_DATA = {"MASS/Pima.tr": ("type", []), "survival/gbsg": ("status", ["pid"])}


def domain_drops(args: argparse.Namespace, work: Path) -> list[dict]:
    """Out-of-domain drops against a server answering with genuine rows of the whole table."""
    out = []
    settings = {"default domains": {}, "observed extremes": {"widen": 0}}
    for name, (target, drop) in DOMAIN_DATA.items():
        table = load_dataset(name).drop(columns=drop)
        for seed in range(args.seeds):
            train = table.sample(args.rows, random_state=seed).reset_index(drop=True)
            schema = infer_schema(train, target=target)
            for label, params in settings.items():
                with ChatServer(RowReplier(table, jitter=0.0)) as server:
                    gen = PromptedLLM(
                        endpoint=server.url,
                        llm_model="test-model",
                        examples=args.examples,
                        response_format="json_object",
                        curate=False,
                        audit_log=str(work / "domains.audit.jsonl"),
                        seed=seed,
                        **params,
                    ).fit(train, schema=schema)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        gen.sample(args.n, seed=seed)
                rec = gen.sampling_record_
                out.append(
                    {
                        "data": name,
                        "domains": label,
                        "seed": seed,
                        "rows_parsed": rec["rows_parsed"],
                        "rows_out_of_domain": rec["rows_out_of_domain"],
                        "invalid_reasons": rec["invalid_reasons"],
                        "domain": rec["domains"],
                    }
                )
                print(f"domains: {name} {label} seed {seed} done", flush=True)
    return out


def domain_lines(results: list[dict], args: argparse.Namespace) -> list[str]:
    lines = [
        "",
        f"## Rows dropped as out of domain, {args.rows} real rows",
        "",
        f"{args.seeds} repeats (a different set of {args.rows} rows each; schema inferred from "
        f"them), {args.n} rows asked for per run. Endpoint: the scripted server answering with "
        "genuine rows of the whole table (no noise), in JSON mode, so it is not held to the "
        "ranges, as a model is not. No curation.",
        "",
        "| data | domains | rows parsed | out of domain | share (mean, max) | most dropped |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    keys = dict.fromkeys((r["data"], r["domains"]) for r in results)
    for data, label in keys:
        xs = [r for r in results if (r["data"], r["domains"]) == (data, label)]
        shares = [r["rows_out_of_domain"] / r["rows_parsed"] for r in xs]
        reasons: dict[str, int] = {}
        for r in xs:
            for k, v in r["invalid_reasons"].items():
                key = k.removesuffix(" out of domain")
                reasons[key] = reasons.get(key, 0) + v
        top = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])[:4])
        lines.append(
            f"| {data} | {label} | {sum(r['rows_parsed'] for r in xs):,} | "
            f"{sum(r['rows_out_of_domain'] for r in xs):,} | "
            f"{np.mean(shares):.1%}, {np.max(shares):.1%} | {top or '-'} |"
        )
    return lines


COVERAGE_DATA = {
    "MASS/Pima.tr": [],
    "survival/gbsg": ["pid"],
    "survival/pbc": ["id"],
    "survival/mgus2": ["id"],
    "survival/nafld1": ["id"],
}


def coverage_lines(rows: int, draws: int = 20) -> list[str]:
    """Share of a whole table outside the domains of ``rows`` of its rows, by ``widen``."""
    from healthsynth.generators.prompted_llm._domains import resolve_domains

    widens = (0.0, 1.0, 2.0, 3.0)
    lines = [
        "",
        f"## Why three standard deviations: {rows} rows against their whole table",
        "",
        f"{draws} draws of {rows} rows from each table, schema inferred from the draw; the share "
        "of the whole table's rows with a value outside the domain of at least one numeric "
        "column (mean over the draws, and the worst draw). No server involved.",
        "",
        "| table | rows | numeric columns | " + " | ".join(f"widen={w:g}" for w in widens) + " |",
        "| --- | ---: | ---: | " + " | ".join("---:" for _ in widens) + " |",
    ]
    for name, drop in COVERAGE_DATA.items():
        table = load_dataset(name).drop(columns=drop)
        cells = []
        n_cols = 0
        for w in widens:
            shares = []
            for seed in range(draws):
                train = table.sample(rows, random_state=seed)
                schema = infer_schema(train)
                domains = resolve_domains(train, schema, widen=w)
                out = np.zeros(len(table), bool)
                for col, d in domains.items():
                    v = table[col].to_numpy(float)
                    with np.errstate(invalid="ignore"):
                        out |= (v < float(d.low) - 1e-9) | (v > float(d.high) + 1e-9)
                n_cols = len(domains)
                shares.append(out.mean())
            cells.append(f"{np.mean(shares):.1%} ({np.max(shares):.1%})")
        lines.append(f"| {name} | {len(table):,} | {n_cols} | " + " | ".join(cells) + " |")
    return lines


if __name__ == "__main__":
    main()
