#!/usr/bin/env python
"""Benchmark: reading 1 million OMOP measurement rows from PostgreSQL (target: <= 60 s, <= 1 GB).

Steps:

1. load the real NAFLD cohort (17,549 patients, 400,123 lab values) into a new schema with
   ``healthsynth.data.write_omop`` (timed: the writer's own speed), then copy its persons,
   observation periods, deaths and measurements under new person IDs until ``--rows``
   measurement rows exist (three copies of the cohort, the last one cut: the rows are real
   values, repeated);
2. in a fresh Python process, ``read_omop(url, schema=..., domains=["measurement"])``: wall
   time, CPU time and peak resident memory of that whole process (``ru_maxrss``, imports
   included);
3. the same for DuckDB (the same tables built the same way in a DuckDB file), for comparison;
4. print a JSON record and write it to ``--out`` if given; drop the schema.

    eval "$(bash scripts/postgres.sh start)"
    .venv/bin/python benchmarks/omop_read.py --out docs/omop-results/read.json

The URL comes from ``--url`` or ``HEALTHSYNTH_TEST_POSTGRES_URL``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

PRIMARY_KEYS: dict[str, str] = {}

READ = r"""
import json, resource, sys, time
t0, c0 = time.perf_counter(), time.process_time()
from healthsynth.data import read_omop
got = read_omop(sys.argv[1], schema=sys.argv[2], domains=["measurement"],
                batch_size=int(sys.argv[3]))
ds = got.dataset
print(json.dumps({
    "seconds": round(time.perf_counter() - t0, 2),
    "cpu_seconds": round(time.process_time() - c0, 2),
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    "measurement_rows": int(len(ds.tables["measurement"])),
    "persons": int(ds.n_patients),
    "items": int(ds.tables["measurement"]["concept"].nunique()),
}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default=os.environ.get("HEALTHSYNTH_TEST_POSTGRES_URL"))
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch-size", type=int, default=100_000)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if not args.url:
        print('give --url or start a server: eval "$(bash scripts/postgres.sh start)"')
        return 2

    from healthsynth.data import load_timelines, write_omop
    from healthsynth.data._db import open_database
    from healthsynth.knowledge import load_code_map

    global PRIMARY_KEYS
    from healthsynth.data._omop_cdm import PRIMARY_KEYS

    schema = "bench_" + uuid.uuid4().hex[:8]
    cohort = load_timelines("nafld")
    t0 = time.perf_counter()
    counts = write_omop(cohort, args.url, schema=schema, code_map=load_code_map("nafld"))
    write_seconds = time.perf_counter() - t0
    try:
        with open_database(args.url, write=True) as db:
            rows = _replicate(db, schema, args.rows)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
        pg = _read(args.url, schema, args.batch_size, env)
        with tempfile.TemporaryDirectory() as tmp:
            duck_url = f"duckdb:///{tmp}/cdm.duckdb"
            write_omop(cohort, duck_url, code_map=load_code_map("nafld"))
            with open_database(duck_url, write=True) as db:
                _replicate(db, "main", args.rows)
            duck = _read(duck_url, "main", args.batch_size, env)
    finally:
        with open_database(args.url, write=True) as db:
            db.execute(f"DROP SCHEMA IF EXISTS {db.qualify(schema)} CASCADE")
    result = {
        "cohort": "NAFLD (survival/nafld1-3), copied under new person IDs",
        "measurement_rows_in_cdm": rows,
        "write_omop": {
            "seconds": round(write_seconds, 2),
            "rows": counts,
        },
        "read_postgresql": pg,
        "read_duckdb": duck,
        "targets": {"seconds": 60, "peak_rss_mb": 1024},
        "met": pg["seconds"] <= 60 and pg["peak_rss_mb"] <= 1024,
        "batch_size": args.batch_size,
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


def _replicate(db, schema: str, rows: int) -> int:
    """Copy the cohort under new person IDs until ``rows`` measurement rows exist."""
    q = db.qualify
    have = db.rows(f"SELECT count(*) FROM {q(schema, 'measurement')}")[0][0]
    base = have
    offset = db.rows(f"SELECT max(person_id) FROM {q(schema, 'person')}")[0][0] + 1
    copy = 1
    while have < rows:
        shift = offset * copy
        take = min(base, rows - have)
        with db.transaction():
            for t in ("person", "observation_period", "death"):
                cols = db.columns(schema, t)
                key = PRIMARY_KEYS.get(t)
                sel = ", ".join(f"{c} + {shift}" if c in ("person_id", key) else c for c in cols)
                db.execute(
                    f"INSERT INTO {q(schema, t)} SELECT {sel} FROM {q(schema, t)} "
                    f"WHERE person_id < {offset}"
                )
            cols = db.columns(schema, "measurement")
            sel = ", ".join(
                f"person_id + {shift}"
                if c == "person_id"
                else f"measurement_id + {base * copy}"
                if c == "measurement_id"
                else c
                for c in cols
            )
            db.execute(
                f"INSERT INTO {q(schema, 'measurement')} SELECT {sel} FROM "
                f"{q(schema, 'measurement')} WHERE measurement_id <= {take}"
            )
        have += take
        copy += 1
    if db.dialect == "postgresql":
        db.execute(f"ANALYZE {q(schema, 'measurement')}")
    return int(have)


def _read(url: str, schema: str, batch_size: int, env: dict) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", READ, url, schema, str(batch_size)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode:
        raise SystemExit(f"the read failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    sys.exit(main())
