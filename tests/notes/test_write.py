from __future__ import annotations

import json
import os
import time

import pytest

from healthsynth.errors import (
    BudgetError,
    DataFileError,
    EndpointError,
    ParameterError,
    RemotePHIError,
)
from healthsynth.llm import read_audit_log
from healthsynth.llm.testing import ChatServer, Reply
from healthsynth.notes import provenance, read_patients, write_notes
from healthsynth.notes.testing import NoteReplier
from tests.notes.conftest import mark_sampled


def _write(src, out, server, **kw):
    kw.setdefault("audit_log", out.parent / "audit.jsonl")
    return write_notes(src, out, endpoint=server.url, llm_model="test-model", **kw)


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_one_note_per_patient_from_a_sampled_table(tmp_path, pbc_csv):
    out = tmp_path / "notes.jsonl"
    with ChatServer(NoteReplier()) as server:
        record = _write(pbc_csv, out, server, kind="progress note")
        prompts = [b["messages"][-1]["content"] for b in server.requests]
    notes = _lines(out)
    assert len(notes) == 40 == record["notes"] == record["requests"]
    assert record["synthetic"] is True and "run record" in record["evidence"]
    assert [n["patient_id"] for n in notes] == [str(i) for i in range(1, 41)]
    assert all(n["kind"] == "progress note" and n["note"].startswith("S: ") for n in notes)
    # each prompt holds one patient's row (never the identifier column): the one its note has
    sent = sorted(
        json.loads(p.split("as JSON:\n")[1].splitlines()[0])["attributes"]["bili"] for p in prompts
    )
    assert sent == sorted(n["patient"]["attributes"]["bili"] for n in notes)
    assert all('"id"' not in p and "bilirubin: " in p for p in prompts)
    assert (
        "bilirubin: 14.5 mg/dL"
        in prompts[[i for i, p in enumerate(prompts) if '"bili": 14.5,' in p][0]]
    )
    assert "id" not in notes[0]["patient"]["attributes"]
    run = json.loads((tmp_path / "notes.jsonl.run.json").read_text())
    assert run["command"] == "notes" and run["tokens_in"] > 0


def test_audit_log_records_synthetic_and_real_patients(tmp_path, pbc_csv, pbc):
    real_csv = tmp_path / "real.csv"
    pbc.head(5).to_csv(real_csv, index=False)
    with ChatServer(NoteReplier()) as server:
        _write(pbc_csv, tmp_path / "a.jsonl", server, max_patients=3)
        with pytest.warns(UserWarning, match="not proven synthetic"):
            _write(real_csv, tmp_path / "b.jsonl", server)
    log = read_audit_log(tmp_path / "audit.jsonl")
    sent = [r for r in log if r["event"] == "sent" and r["purpose"] == "note"]
    assert [r["real_rows"] for r in sent] == [0] * 3 + [1] * 5
    assert sent[-1]["columns"][:3] == ["time", "status", "trt"] and sent[0]["columns"] == []
    assert json.loads((tmp_path / "b.jsonl.run.json").read_text())["synthetic"] is False


def test_real_table_is_refused_for_a_remote_endpoint_before_anything_is_sent(tmp_path, pbc):
    real_csv = tmp_path / "real.csv"
    pbc.head(5).to_csv(real_csv, index=False)
    out = tmp_path / "notes.jsonl"
    with pytest.raises(
        RemotePHIError, match=r"real\.csv is not proven synthetic .*not this machine"
    ):
        write_notes(
            real_csv,
            out,
            endpoint="https://llm.example.com/v1",
            llm_model="m",
            audit_log=tmp_path / "audit.jsonl",
        )
    assert not out.exists() and not (tmp_path / "audit.jsonl").exists()
    assert list(tmp_path.iterdir()) == [real_csv]


def test_provenance_needs_a_matching_fresh_run_record(tmp_path, pbc):
    path = tmp_path / "s.csv"
    pbc.head(3).to_csv(path, index=False)
    assert provenance(path)[0] is False
    run = mark_sampled(path)
    assert provenance(path)[0] is True
    run.write_text(json.dumps({"command": "fit", "output": str(path)}))
    assert provenance(path)[1].endswith("is not the run record of `healthsynth sample`")
    run.write_text(json.dumps({"command": "sample", "output": "other.csv"}))
    assert "describes another output" in provenance(path)[1]
    mark_sampled(path)
    later = time.time() + 60
    os.utime(path, (later, later))  # the data were changed after they were sampled
    ok, why, _ = provenance(path)
    assert not ok and "changed after" in why


def test_timeline_folder_gives_each_patient_its_events(tmp_path, nafld_folder):
    out = tmp_path / "notes.jsonl"
    with ChatServer(NoteReplier()) as server:
        with pytest.warns(UserWarning, match="not proven synthetic"):
            record = _write(nafld_folder, out, server, key="id", time_column="days", max_events=5)
        prompts = [b["messages"][-1]["content"] for b in server.requests]
    notes = _lines(out)
    assert record["layout"] == "timelines" and len(notes) == 30
    p = notes[0]["patient"]
    assert 0 < len(p["events"]) <= 5 and p["events_total"] >= len(p["events"])
    days = [e["day"] for e in p["events"]]
    assert days == sorted(days)
    ours = [q for q in prompts if json.dumps(p["attributes"], ensure_ascii=False) in q]
    assert len(ours) == 1
    assert "timeline, in days relative to day 0" in ours[0] and f"day {days[0]}:" in ours[0]
    src = read_patients(nafld_folder, key="id", time="days")
    assert {q.id for q in src.patients} == {n["patient_id"] for n in notes}


def test_timeline_folder_without_roles_says_what_to_give(tmp_path, nafld_folder):
    with pytest.raises(ParameterError, match=r"give the model folder .* or the patient ID"):
        read_patients(nafld_folder)


def test_unknown_kind_lists_the_known_ones(tmp_path, pbc_csv):
    with pytest.raises(ParameterError, match="'discharge summary', 'progress note', 'radiology"):
        write_notes(
            pbc_csv,
            tmp_path / "n.jsonl",
            endpoint="http://127.0.0.1:9/v1",
            llm_model="m",
            kind="operative note",
        )


def test_empty_table_is_one_sentence(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("id,age,sex\n")
    with pytest.raises(DataFileError, match="empty.csv"):
        write_notes(path, tmp_path / "n.jsonl", endpoint="http://127.0.0.1:9/v1", llm_model="m")
    import pandas as pd

    with pytest.raises(Exception, match="no rows"):
        write_notes(
            pd.DataFrame({"age": []}),
            tmp_path / "n.jsonl",
            endpoint="http://127.0.0.1:9/v1",
            llm_model="m",
        )


def test_empty_reply_fails_and_leaves_nothing(tmp_path, pbc_csv):
    out = tmp_path / "notes.jsonl"
    with ChatServer(NoteReplier()) as server:
        server.script.extend([Reply(), Reply(content="   ")])
        with pytest.raises(
            EndpointError, match=r"returned an empty note for patient 2 .*--max-tokens"
        ):
            _write(pbc_csv, out, server, concurrency=1)
    assert not out.exists() and not (tmp_path / "notes.jsonl.run.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "audit.jsonl",
        "synthetic.csv",
        "synthetic.csv.run.json",
    ]


def test_output_must_be_jsonl(tmp_path, pbc_csv):
    with pytest.raises(ParameterError, match=r"must end in \.jsonl"):
        write_notes(pbc_csv, tmp_path / "n.csv", endpoint="http://127.0.0.1:9/v1", llm_model="m")


def test_budget_stops_with_the_notes_so_far(tmp_path, pbc_csv):
    out = tmp_path / "notes.jsonl"
    with ChatServer(NoteReplier()) as server:
        with pytest.warns(UserWarning, match="budget ran out: notes for"):
            record = _write(pbc_csv, out, server, budget_tokens=6000, max_tokens=400, concurrency=1)
    assert record["stopped_by"] == "budget"
    assert 0 < record["notes"] < 40 == record["patients"]
    assert record["tokens_in"] + record["tokens_out"] <= 6000
    assert len(_lines(out)) == record["notes"]
    with ChatServer(NoteReplier()) as server, pytest.raises(BudgetError):
        _write(pbc_csv, tmp_path / "none.jsonl", server, budget_tokens=100, max_tokens=400)


def test_cache_answers_a_repeated_run(tmp_path, pbc_csv):
    with ChatServer(NoteReplier()) as server:
        a = _write(
            pbc_csv, tmp_path / "a.jsonl", server, cache_dir=tmp_path / "cache", max_patients=5
        )
        b = _write(
            pbc_csv, tmp_path / "b.jsonl", server, cache_dir=tmp_path / "cache", max_patients=5
        )
        assert len(server.requests) == 5
    assert (a["requests"], b["requests"], b["cached_requests"]) == (5, 0, 5)
    assert [n["note"] for n in _lines(tmp_path / "a.jsonl")] == [
        n["note"] for n in _lines(tmp_path / "b.jsonl")
    ]
