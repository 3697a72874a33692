#!/usr/bin/env python
"""Benchmark: the full NAFLD cohort as an OMOP CDM in PostgreSQL, learned from and written back.

Steps, in one process:

1. write the real NAFLD cohort (17,549 patients) as a CDM into a new PostgreSQL schema, with
   the NAFLD code mapping and OMOP concept IDs on five items (as the tests do), plus a
   five-row ``concept`` table;
2. read it back with one index date and compare with the CSV-read cohort: every event, and the
   timeline evaluation of the database-read cohort against the CSV-read one next to the
   CSV-read cohort against itself;
3. read it again (index: each person's observation start), fit ``timeline-lm`` with the learned
   code map under a wall-clock cap, sample ``--n`` patients and write them into a second new
   schema; run the referential checks there and count the concept IDs that came through;
4. print the results as JSON (``--out`` also writes them) and drop both schemas.

    eval "$(bash scripts/postgres.sh start)"
    .venv/bin/python benchmarks/omop_round_trip.py --out docs/omop-results/round_trip.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.data.omop_cdm

METRICS = ["event_prevalence_r2", "cooccurrence_r2", "events_per_patient", "event_order"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default=os.environ.get("HEALTHSYNTH_TEST_POSTGRES_URL"))
    ap.add_argument("--max-time", type=float, default=180.0, help="training cap, seconds")
    ap.add_argument("--n", type=int, default=2000, help="synthetic patients")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if not args.url:
        print('give --url or start a server: eval "$(bash scripts/postgres.sh start)"')
        return 2

    from tests.data import omop_cdm as cdm

    from healthsynth.data import read_omop, write_omop
    from healthsynth.data._db import open_database
    from healthsynth.evaluate.timeline import evaluate_timelines
    from healthsynth.generators.timeline_lm import TimelineLM
    from healthsynth.knowledge import CodeMap

    cohort = cdm.nafld(None)
    src, out = cdm.new_schema(), cdm.new_schema()
    result: dict = {"patients": cohort.n_patients}
    with tempfile.TemporaryDirectory() as tmp:
        code_map = cdm.concept_map(Path(tmp))
    try:
        t0 = time.perf_counter()
        cdm.load_cdm(cohort, args.url, src, code_map)
        result["write_cdm_seconds"] = round(time.perf_counter() - t0, 2)

        t0 = time.perf_counter()
        fixed = read_omop(args.url, schema=src, index_date=cdm.INDEX_DATE)
        result["read_seconds"] = round(time.perf_counter() - t0, 2)
        a = cdm.as_csv_naming(fixed.dataset, code_map)
        b = cdm.sorted_events(cohort.events()[["id", "days", "item", "value"]])
        same = (
            len(a) == len(b)
            and all(a[c].equals(b[c]) for c in ("id", "days", "item"))
            and a["value"].fillna(-1).equals(b["value"].fillna(-1))
        )
        result["events"] = {"csv": int(len(b)), "database": int(len(a)), "identical": bool(same)}
        real, from_db = cdm.csv_views(cohort, fixed.dataset, code_map)
        ref = evaluate_timelines(real=real, synthetic=real, metrics=METRICS)["records"]
        got = evaluate_timelines(real=real, synthetic=from_db, metrics=METRICS)["records"]
        result["evaluation"] = {
            r["name"] + (f"[{r['subgroup']}]" if r.get("subgroup") else ""): {
                "csv_vs_csv": r["value"],
                "database_vs_csv": g["value"],
            }
            for r, g in zip(ref, got, strict=True)
        }

        omop = read_omop(args.url, schema=src)
        learned = CodeMap.from_frame(omop.concepts, name="omop")
        t0 = time.perf_counter()
        gen = TimelineLM(code_map=learned, max_time=args.max_time, seed=0).fit(omop.dataset)
        result["fit"] = {
            "seconds": round(time.perf_counter() - t0, 1),
            "epochs": gen.training_record_.get("epochs_run"),
            "stop": gen.training_record_.get("stop_reason"),
        }
        t0 = time.perf_counter()
        syn = gen.sample(args.n, seed=1)
        result["sample_seconds"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        counts = write_omop(syn, args.url, schema=out, code_map=gen.code_map_)
        result["write_synthetic"] = {"seconds": round(time.perf_counter() - t0, 2), "rows": counts}
        with open_database(args.url) as db:
            result["referential_checks"] = cdm.referential_checks(db, out)
            q = db.qualify
            result["synthetic_concepts"] = {
                "condition": dict(
                    db.rows(
                        "SELECT condition_concept_id, count(*) FROM "
                        f"{q(out, 'condition_occurrence')} GROUP BY 1 ORDER BY 1"
                    )
                ),
                "measurement": dict(
                    db.rows(
                        f"SELECT measurement_concept_id, count(*) FROM {q(out, 'measurement')} "
                        "GROUP BY 1 ORDER BY 1"
                    )
                ),
            }
        syn_eval = evaluate_timelines(
            real=omop.dataset,
            synthetic=syn,
            metrics=["event_prevalence_r2", "timeline_violations"],
            code_map=learned,
        )["records"]
        result["synthetic_evaluation"] = {r["name"]: r["value"] for r in syn_eval}
    finally:
        cdm.drop_schema(args.url, src)
        cdm.drop_schema(args.url, out)
    result["cpu_count"] = os.cpu_count()
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
