"""`healthsynth notes` through the CLI runner."""

from __future__ import annotations

import json

from healthsynth.llm.testing import ChatServer, Reply
from healthsynth.notes.testing import NoteReplier
from tests.test_cli import assert_user_error, invoke


def _args(src, out, url, *more):
    return (
        "notes",
        src,
        "-o",
        out,
        "--endpoint",
        url,
        "--llm-model",
        "test-model",
        "--audit-log",
        out.parent / "audit.jsonl",
        *more,
    )


def test_notes_command_writes_the_file_and_record(tmp_path, pbc_csv):
    out = tmp_path / "notes.jsonl"
    with ChatServer(NoteReplier()) as server:
        r = invoke(
            *_args(pbc_csv, out, server.url, "--kind", "radiology-report", "--max-patients", "7")
        )
    assert r.exit_code == 0, r.output
    assert "wrote 7 radiology report notes (synthetic patients)" in " ".join(r.output.split())
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 7 and lines[0]["note"].startswith("Clinical indication:")
    assert json.loads((tmp_path / "notes.jsonl.run.json").read_text())["notes"] == 7


def test_notes_command_user_errors_are_one_line(tmp_path, pbc_csv, pbc):
    out = tmp_path / "notes.jsonl"
    r = invoke(*_args(pbc_csv, out, "http://127.0.0.1:9/v1", "--kind", "operative note"))
    assert_user_error(r, "no note template for kind 'operative note'", "'progress note'")
    real_csv = tmp_path / "real.csv"
    pbc.head(3).to_csv(real_csv, index=False)
    r = invoke(*_args(real_csv, out, "https://llm.example.com/v1"))
    assert_user_error(r, "real.csv is not proven synthetic", "--allow-remote-phi")
    empty = tmp_path / "empty.csv"
    empty.write_text("age,sex\n")
    assert_user_error(invoke(*_args(empty, out, "http://127.0.0.1:9/v1")), "empty.csv")
    with ChatServer(NoteReplier()) as server:
        server.script.append(Reply(content=""))
        r = invoke(*_args(pbc_csv, out, server.url, "--concurrency", "1"))
    assert_user_error(r, "returned an empty note for patient 1")
    assert not out.exists() and not (tmp_path / "notes.jsonl.run.json").exists()
