from __future__ import annotations

import json

import pytest

from healthsynth.errors import DataFileError, ParameterError
from healthsynth.llm.testing import ChatServer
from healthsynth.notes import Patient, evaluate_notes, load_notes, write_notes
from healthsynth.notes._prompts import prompt_record
from healthsynth.notes.evaluate import note_distinct_ngrams, note_self_similarity
from healthsynth.notes.testing import NoteReplier
from tests.notes.conftest import mark_sampled


@pytest.fixture(scope="module")
def scripted(tmp_path_factory, pbc):
    """Notes about 80 real PBC patients (rows never used to write the patterns), half with a
    planted contradiction and half with a planted identifier, through the local server."""
    folder = tmp_path_factory.mktemp("scripted")
    src = folder / "synthetic.csv"
    pbc.iloc[200:280].to_csv(src, index=False)
    mark_sampled(src)
    replier = NoteReplier(contradiction_rate=0.5, leak_rate=0.5)
    with ChatServer(replier) as server:
        write_notes(
            src,
            folder / "notes.jsonl",
            endpoint=server.url,
            llm_model="test-model",
            audit_log=folder / "audit.jsonl",
            kind="radiology report",
        )
    notes = load_notes(folder / "notes.jsonl")
    plans = [
        replier.write(
            prompt_record(Patient.from_dict(n["patient"])), kind="radiology report", seed=n["seed"]
        )
        for n in notes
    ]
    assert all(text == n["note"] for (text, _), n in zip(plans, notes, strict=True))
    return folder / "notes.jsonl", notes, [p for _, p in plans]


def test_targets_on_scripted_notes(scripted):
    path, notes, plans = scripted
    result = evaluate_notes(path)
    rows = result["notes"]
    planted = [bool(p.contradiction) for p in plans]
    flagged = [bool(r["contradictions"]) for r in rows]
    caught = sum(f for f, p in zip(flagged, planted, strict=True) if p) / sum(planted)
    alarms = sum(f for f, p in zip(flagged, planted, strict=True) if not p) / (
        len(planted) - sum(planted)
    )
    assert sum(planted) >= 25 and caught >= 0.95 and alarms <= 0.05
    # every planted identifier is flagged where it was put
    for note, row, plan in zip(notes, rows, plans, strict=True):
        if plan.leak:
            s = note["note"].find(plan.detail["leaked"])
            e = s + len(plan.detail["leaked"])
            assert any(f["start"] < e and f["end"] > s for f in row["phi"]), plan
    by = {(r["name"], r["subgroup"]): r for r in result["records"]}
    share = by[("note_contradictions", None)]
    assert share["value"] == pytest.approx(sum(flagged) / len(rows))
    assert share["dimension"] == "notes" and share["direction"] == "lower"
    assert by[("note_phi", None)]["value"] == pytest.approx(
        sum(bool(r["phi"]) for r in rows) / len(rows)
    )
    assert 0.3 < by[("note_fact_coverage", None)]["value"] <= 1
    assert by[("note_length", None)]["details"]["truncated"] == 0
    json.dumps(result)  # plain data, ready for the report


def test_a_clean_note_set_scores_zero(tmp_path, pbc_csv):
    with ChatServer(NoteReplier()) as server:
        write_notes(
            pbc_csv,
            tmp_path / "n.jsonl",
            endpoint=server.url,
            llm_model="test-model",
            audit_log=tmp_path / "audit.jsonl",
        )
    by = {
        (r["name"], r["subgroup"]): r["value"]
        for r in evaluate_notes(tmp_path / "n.jsonl")["records"]
    }
    assert by[("note_contradictions", None)] == 0
    assert by[("note_phi", None)] == 0


def test_diversity_sees_copies():
    varied = [
        {"note": f"Patient {w} has {v} findings today."}
        for w, v in zip(
            "abcdefgh",
            ["mild", "no", "severe", "new", "old", "stable", "odd", "clear"],
            strict=True,
        )
    ]
    copies = [{"note": "The same note about the same patient."}] * 8
    d_varied = note_distinct_ngrams(notes=varied)[0].value
    d_copies = note_distinct_ngrams(notes=copies)[0].value
    assert d_copies == pytest.approx(5 / 48)  # "the same" twice in each
    assert d_varied > 3 * d_copies
    s_copies = note_self_similarity(notes=copies)[0]
    assert s_copies.value == pytest.approx(1.0) and s_copies.details["near_copy_share"] == 1.0
    assert note_self_similarity(notes=varied)[0].value < 0.6


def test_unknown_metric_and_bad_files(tmp_path):
    with pytest.raises(ParameterError, match="known note metrics: note_contradictions"):
        evaluate_notes([{"note": "x"}], metrics=["bleu"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"note": "ok"}\nnot json\n')
    with pytest.raises(DataFileError, match="line 2 is not valid JSON"):
        load_notes(bad)
    with pytest.raises(DataFileError, match="does not exist"):
        load_notes(tmp_path / "none.jsonl")
    result = evaluate_notes([{"note": "A 50-year-old woman."}])
    rec = next(r for r in result["records"] if r["name"] == "note_contradictions")
    assert rec["status"] == "not_applicable"
