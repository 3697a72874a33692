#!/usr/bin/env python
"""Benchmark: the note checks (consistency and PHI scan) on scripted notes about real patients.

The notes come through the real pipeline: ``healthsynth.notes.write_notes`` sends one prompt per
patient to ``healthsynth.llm.testing.ChatServer`` on 127.0.0.1, whose scripted "model"
(``healthsynth.notes.testing.NoteReplier``) reads the patient record in the prompt and writes a
note: consistent, or with one planned contradiction (age 5-15 years off, sex swapped, a present
condition denied, an absent one invented, a lab value 30-70% off), and, independently, with or
without one leaked identifier (name, phone, record number, date, address, e-mail, SSN). The
plan is a function of the record, so the truth of every note is known; the benchmark re-writes
each note from its record and request seed and checks it is the same text.

Patients: ``survival/pbc`` (418 patients with primary biliary cholangitis: age, sex, ascites,
hepatomegaly, spider angiomata, edema and 9 lab values), split by row: rows 0-99 are the
*development* set (used while writing the patterns), rows 100-417 the *test* set reported in
``docs/notes.md``; and NAFLD timelines (``load_timelines("nafld")``, a seeded subset of
patients with their diagnoses and labs), development seed 1, test seed 2. Each patient gets a
discharge summary, a progress note and a radiology report.

    .venv/bin/python benchmarks/notes.py --split test --out docs/notes-results
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

from healthsynth.data import load_dataset, load_timelines
from healthsynth.llm.testing import ChatServer
from healthsynth.notes import KINDS, check_notes, evaluate_notes, load_notes, write_notes
from healthsynth.notes._prompts import prompt_record
from healthsynth.notes.testing import CONTRADICTIONS, LEAKS, NoteReplier

FACT_OF = {
    "age": "age",
    "sex": "sex",
    "condition_denied": "condition",
    "condition_invented": "condition",
    "lab": "lab",
}


def sources(split: str, n_timelines: int) -> dict[str, object]:
    pbc = load_dataset("survival/pbc")
    rows = pbc.iloc[:100] if split == "dev" else pbc.iloc[100:]
    ds = load_timelines("nafld", max_patients=n_timelines, seed=1 if split == "dev" else 2)
    return {"pbc": rows.reset_index(drop=True), "nafld": ds}


def run(source: object, name: str, kind: str, folder: Path, vocabulary: set[str] | None) -> dict:
    replier = NoteReplier(contradiction_rate=0.5, leak_rate=0.5, vocabulary=vocabulary)
    out = folder / f"{name}-{kind.replace(' ', '_')}.jsonl"
    with ChatServer(replier) as server, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the real rows are "not proven synthetic"
        started = time.perf_counter()
        record = write_notes(
            source,
            out,
            endpoint=server.url,
            llm_model="test-model",
            kind=kind,
            audit_log=folder / "audit.jsonl",
            seed=0,
        )
        write_s = time.perf_counter() - started
    notes = load_notes(out)
    started = time.perf_counter()
    rows = check_notes(notes)
    check_s = time.perf_counter() - started
    truth = []
    for note in notes:
        from healthsynth.notes import Patient

        rec = prompt_record(Patient.from_dict(note["patient"]))
        text, plan = replier.write(rec, kind=kind, seed=note["seed"])
        assert text == note["note"], "the scripted note could not be re-written from its record"
        truth.append(plan)
    result = {
        "notes": len(notes),
        "write_seconds": round(write_s, 2),
        "check_seconds": round(check_s, 2),
        "requests": record["requests"],
    }
    caught: Counter[str] = Counter()
    planted: Counter[str] = Counter()
    caught_any: Counter[str] = Counter()
    false_alarms = clean = 0
    misses, alarms = [], []
    for note, row, plan in zip(notes, rows, truth, strict=True):
        facts = {c["fact"].split(":")[0] for c in row["contradictions"]}
        if plan.contradiction is None:
            clean += 1
            if facts:
                false_alarms += 1
                alarms.append({"patient": note["patient_id"], "found": row["contradictions"]})
        else:
            planted[plan.contradiction] += 1
            if FACT_OF[plan.contradiction] in facts:
                caught[plan.contradiction] += 1
            else:
                misses.append(
                    {
                        "patient": note["patient_id"],
                        "plan": plan.contradiction,
                        "detail": plan.detail,
                        "found": row["contradictions"],
                    }
                )
            if facts:
                caught_any[plan.contradiction] += 1
    result["contradictions"] = {
        c: {"planted": planted[c], "caught": caught[c]} for c in CONTRADICTIONS if planted[c]
    }
    result["clean_notes"] = clean
    result["false_alarms"] = false_alarms
    result["misses"] = misses[:10]
    result["alarms"] = alarms[:10]
    # PHI: a leak is flagged when a finding overlaps the leaked identifier
    leaks: Counter[str] = Counter()
    flagged: Counter[str] = Counter()
    kind_right: Counter[str] = Counter()
    phi_clean = phi_false = 0
    phi_examples, missed_leaks = [], []
    for note, row, plan in zip(notes, rows, truth, strict=True):
        text = note["note"]
        if plan.leak is None:
            phi_clean += 1
            if row["phi"]:
                phi_false += 1
                f = row["phi"][0]
                phi_examples.append({"rule": f["rule"], "text": text[f["start"] : f["end"]]})
            continue
        leaks[plan.leak] += 1
        leaked = plan.detail["leaked"]
        s = text.find(leaked)
        e = s + len(leaked)
        hits = [f for f in row["phi"] if f["start"] < e and f["end"] > s]
        if hits:
            flagged[plan.leak] += 1
            kind_right[plan.leak] += any(
                f["kind"] == plan.leak
                or (plan.leak == "record_number" and f["kind"] == "record_number")
                for f in hits
            )
        else:
            missed_leaks.append({"leak": plan.leak, "text": leaked})
    result["leaks"] = {
        k: {"planted": leaks[k], "flagged": flagged[k], "right_kind": kind_right[k]}
        for k in LEAKS
        if leaks[k]
    }
    result["notes_without_leak"] = phi_clean
    result["notes_without_leak_flagged"] = phi_false
    result["phi_false_positive_examples"] = phi_examples[:15]
    result["missed_leaks"] = missed_leaks[:10]
    ev = evaluate_notes(notes)
    result["metrics"] = [
        {k: r[k] for k in ("name", "subgroup", "value")}
        for r in ev["records"]
        if r["value"] is not None
    ]
    return result


def pct(a: int, b: int) -> str:
    return f"{a}/{b} ({a / max(b, 1):.1%})"


def summarize(results: dict) -> str:
    lines = [
        "| source | kind | notes | contradictions caught | false alarms | leaks flagged | "
        "leak-free notes flagged |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    tot = Counter()
    for key, r in results.items():
        src, kind = key.split("|")
        planted = sum(v["planted"] for v in r["contradictions"].values())
        caught = sum(v["caught"] for v in r["contradictions"].values())
        leaks = sum(v["planted"] for v in r["leaks"].values())
        flagged = sum(v["flagged"] for v in r["leaks"].values())
        tot.update(
            {
                "notes": r["notes"],
                "planted": planted,
                "caught": caught,
                "clean": r["clean_notes"],
                "alarms": r["false_alarms"],
                "leaks": leaks,
                "flagged": flagged,
                "phi_clean": r["notes_without_leak"],
                "phi_false": r["notes_without_leak_flagged"],
            }
        )
        lines.append(
            f"| {src} | {kind} | {r['notes']} | {pct(caught, planted)} "
            f"| {pct(r['false_alarms'], r['clean_notes'])} | {pct(flagged, leaks)} "
            f"| {pct(r['notes_without_leak_flagged'], r['notes_without_leak'])} |"
        )
    lines.append(
        f"| **all** | | {tot['notes']} | {tot['caught']}/{tot['planted']} "
        f"({tot['caught'] / max(tot['planted'], 1):.1%}) | {tot['alarms']}/{tot['clean']} "
        f"({tot['alarms'] / max(tot['clean'], 1):.1%}) | {tot['flagged']}/{tot['leaks']} "
        f"({tot['flagged'] / max(tot['leaks'], 1):.1%}) | {tot['phi_false']}/{tot['phi_clean']} "
        f"({tot['phi_false'] / max(tot['phi_clean'], 1):.1%}) |"
    )
    per = Counter()
    for r in results.values():
        for c, v in r["contradictions"].items():
            per.update({f"{c}|planted": v["planted"], f"{c}|caught": v["caught"]})
        for c, v in r["leaks"].items():
            per.update({f"leak:{c}|planted": v["planted"], f"leak:{c}|caught": v["flagged"]})
    lines += ["", "| planted | notes | caught |", "| --- | ---: | ---: |"]
    for c in [*CONTRADICTIONS, *(f"leak:{k}" for k in LEAKS)]:
        n = per[f"{c}|planted"]
        if n:
            lines.append(f"| {c} | {n} | {per[f'{c}|caught']} ({per[f'{c}|caught'] / n:.1%}) |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["dev", "test"], default="test")
    ap.add_argument("--timelines", type=int, default=150, help="NAFLD patients")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--keep", type=Path, default=None, help="keep the notes files here")
    args = ap.parse_args()
    srcs = sources(args.split, args.timelines)
    vocab = {str(i).lower() for i in srcs["nafld"].events()["item"].unique()}
    results = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for name, src in srcs.items():
            for kind in KINDS:
                results[f"{name}|{kind}"] = run(
                    src, name, kind, folder, vocab if name == "nafld" else None
                )
    table = summarize(results)
    print(table)
    print(f"{time.perf_counter() - started:.1f} s")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"results-{args.split}.json").write_text(json.dumps(results, indent=1))
        (args.out / f"summary-{args.split}.md").write_text(table)


if __name__ == "__main__":
    main()
