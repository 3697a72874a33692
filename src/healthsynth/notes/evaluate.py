"""Note metrics, returning the same :class:`~healthsynth.evaluate.MetricRecord` as the rest.

Every metric takes the notes (a notes file written by :func:`~healthsynth.notes.write_notes`,
or its lines as dicts) keyword-only. Their dimension is ``notes``; ``details["aspect"]`` says
which part of the portfolio each one belongs to (clinical, privacy, diversity, length).

``note_contradictions`` (clinical; lower is better)
    Share of notes that contradict their patient's record on age, sex, a condition or a lab
    value (see :mod:`healthsynth.notes._facts` for the patterns); one subgroup per fact kind.
    Limits: pattern reading, English only; units are not converted; facts left out are not
    counted. Targets on scripted notes: see ``docs/notes.md``.
``note_fact_coverage`` (clinical; higher)
    Mean share of the record's age, sex, present conditions and labs that the note states.
``note_phi`` (privacy; lower)
    Share of notes holding at least one identifier (names, dates, phone numbers, e-mail, web
    addresses, SSNs, record numbers, street addresses; :mod:`healthsynth.notes._phi`); one
    subgroup per kind. Pattern recognisers and a name list: a name that is neither listed nor
    in a recognised context is missed.
``note_distinct_ngrams`` (diversity; higher)
    Distinct word n-grams over all n-grams of all notes (distinct-n, Li et al. 2016), n = 2, 3.
``note_self_similarity`` (diversity; lower)
    Mean cosine similarity of each note's TF-IDF vector (words and word pairs) to its most
    similar other note; ``details`` holds the share of notes with a near copy (>= 0.9).
``note_length`` (length; target)
    Mean words per note, with quantiles and the truncated count in ``details``.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from healthsynth.errors import DataFileError, ParameterError
from healthsynth.notes._facts import check_note, extract_facts, patient_facts
from healthsynth.notes._lexicon import Lexicon, load_lexicon
from healthsynth.notes._patients import Patient, PatientSource
from healthsynth.notes._phi import PHI_KINDS, scan_phi

__all__ = [
    "NOTE_METRICS",
    "check_notes",
    "evaluate_notes",
    "load_notes",
    "note_contradictions",
    "note_distinct_ngrams",
    "note_fact_coverage",
    "note_length",
    "note_phi",
    "note_self_similarity",
]

_WORD = re.compile(r"[A-Za-z0-9]+(?:[.'’-][A-Za-z0-9]+)*")
Notes = str | Path | Sequence[Mapping[str, Any]]


def load_notes(notes: Notes) -> list[dict[str, Any]]:
    """The notes of a notes file (or a list of note dicts), each with a ``note`` text."""
    if isinstance(notes, (str, Path)):
        path = Path(notes)
        if not path.is_file():
            raise DataFileError(f"notes file {path} does not exist")
        out = []
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                raise DataFileError(f"notes file {path} line {i} is not valid JSON") from None
            if not isinstance(item, dict) or not isinstance(item.get("note"), str):
                raise DataFileError(f"notes file {path} line {i} has no 'note' text")
            out.append(item)
        if not out:
            raise DataFileError(f"notes file {path} holds no note")
        return out
    out = [dict(n) for n in notes]
    bad = [i for i, n in enumerate(out) if not isinstance(n.get("note"), str)]
    if bad:
        raise ParameterError(f"note {bad[0]} has no 'note' text; each note needs one")
    if not out:
        raise ParameterError("there are no notes to evaluate")
    return out


def _patients_for(
    notes: list[dict[str, Any]], patients: PatientSource | Sequence[Patient] | None
) -> list[Patient | None]:
    if patients is None:
        return [Patient.from_dict(n["patient"]) if n.get("patient") else None for n in notes]
    items = patients.patients if isinstance(patients, PatientSource) else list(patients)
    by_id = {p.id: p for p in items}
    return [by_id.get(str(n.get("patient_id"))) for n in notes]


def check_notes(
    notes: Notes,
    *,
    patients: PatientSource | Sequence[Patient] | None = None,
    lexicon: str | Path | Lexicon | None = None,
) -> list[dict[str, Any]]:
    """One row per note: its contradictions, facts stated and covered, identifiers, words.

    ``patients`` (default: the record each note line carries) are matched by ``patient_id``.
    """
    items = load_notes(notes)
    lex = load_lexicon(lexicon)
    pats = _patients_for(items, patients)
    tracked = {str(e["item"]).lower() for p in pats if p is not None for e in p.events}
    rows = []
    for note, patient in zip(items, pats, strict=True):
        text = note["note"]
        row: dict[str, Any] = {
            "patient_id": note.get("patient_id"),
            "words": len(_WORD.findall(text)),
            "truncated": note.get("finish_reason") == "length",
            "phi": [
                {"kind": f.kind, "rule": f.rule, "start": f.start, "end": f.end}
                for f in scan_phi(text)
            ],
        }
        if patient is None:
            row.update(contradictions=None, stated=0, covered=0, facts=0)
        else:
            record = patient_facts(patient, lex, tracked_items=tracked)
            row.update(check_note(extract_facts(text, lex), record))
        rows.append(row)
    return rows


def _record(name: str, value: float | None, direction: str, **kw: Any) -> Any:
    from healthsynth.evaluate import MetricRecord

    return MetricRecord(name=name, dimension="notes", value=value, direction=direction, **kw)  # type: ignore[arg-type]


def note_contradictions(
    *, notes: Notes, patients: Any = None, lexicon: Any = None, rows: Any = None
) -> list[Any]:
    """Share of notes contradicting their record, overall and per fact kind (lower is better)."""
    rows = rows if rows is not None else check_notes(notes, patients=patients, lexicon=lexicon)
    checked = [r for r in rows if r["contradictions"] is not None]
    if not checked:
        from healthsynth.evaluate import not_applicable

        return [
            not_applicable(
                "note_contradictions", "notes", "no note could be matched to a patient record"
            )
        ]
    kinds: Counter[str] = Counter()
    for r in checked:
        kinds.update({c["fact"].split(":")[0] for c in r["contradictions"]})
    n = len(checked)
    examples = [{"patient_id": r["patient_id"], **c} for r in checked for c in r["contradictions"]][
        :10
    ]
    details = {
        "aspect": "clinical",
        "notes": n,
        "notes_unmatched": len(rows) - n,
        "by_fact": dict(kinds),
        "examples": examples,
    }
    out = [
        _record(
            "note_contradictions",
            sum(bool(r["contradictions"]) for r in checked) / n,
            "lower",
            details=details,
        )
    ]
    for kind in ("age", "sex", "condition", "lab"):
        out.append(
            _record(
                "note_contradictions",
                kinds.get(kind, 0) / n,
                "lower",
                subgroup=f"fact:{kind}",
                details={"aspect": "clinical", "notes": kinds.get(kind, 0)},
            )
        )
    return out


def note_fact_coverage(
    *, notes: Notes, patients: Any = None, lexicon: Any = None, rows: Any = None
) -> list[Any]:
    """Mean share of the record's facts each note states (higher is better)."""
    rows = rows if rows is not None else check_notes(notes, patients=patients, lexicon=lexicon)
    shares = [r["covered"] / r["facts"] for r in rows if r.get("facts")]
    if not shares:
        from healthsynth.evaluate import not_applicable

        return [not_applicable("note_fact_coverage", "notes", "no record has checkable facts")]
    return [
        _record(
            "note_fact_coverage",
            float(np.mean(shares)),
            "higher",
            details={"aspect": "clinical", "notes": len(shares)},
        )
    ]


def note_phi(*, notes: Notes, rows: Any = None) -> list[Any]:
    """Share of notes with an identifier, overall and per kind (lower is better)."""
    rows = rows if rows is not None else check_notes(notes)
    n = len(rows)
    per_kind = {k: sum(any(f["kind"] == k for f in r["phi"]) for r in rows) for k in PHI_KINDS}
    rules: Counter[str] = Counter(f["rule"] for r in rows for f in r["phi"])
    out = [
        _record(
            "note_phi",
            sum(bool(r["phi"]) for r in rows) / n,
            "lower",
            details={
                "aspect": "privacy",
                "notes": n,
                "findings": sum(len(r["phi"]) for r in rows),
                "notes_by_kind": per_kind,
                "by_rule": dict(rules),
            },
        )
    ]
    for k in PHI_KINDS:
        out.append(
            _record(
                "note_phi",
                per_kind[k] / n,
                "lower",
                subgroup=f"kind:{k}",
                details={"aspect": "privacy", "notes": per_kind[k]},
            )
        )
    return out


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def note_distinct_ngrams(*, notes: Notes) -> list[Any]:
    """Distinct-n: distinct word n-grams over all n-grams, n = 2 and 3 (higher is better)."""
    texts = [n["note"] for n in load_notes(notes)]
    out = []
    for k in (2, 3):
        grams: list[tuple[str, ...]] = []
        for t in texts:
            w = _words(t)
            grams.extend(tuple(w[i : i + k]) for i in range(len(w) - k + 1))
        value = len(set(grams)) / len(grams) if grams else None
        out.append(
            _record(
                "note_distinct_ngrams",
                value,
                "higher",
                subgroup=f"n={k}",
                details={"aspect": "diversity", "ngrams": len(grams)},
            )
        )
    return out


def note_self_similarity(*, notes: Notes, max_notes: int = 2000, seed: int = 0) -> list[Any]:
    """Mean TF-IDF cosine similarity of each note to its nearest other note (lower is better)."""
    texts = [n["note"] for n in load_notes(notes)]
    if len(texts) < 2:
        from healthsynth.evaluate import not_applicable

        return [not_applicable("note_self_similarity", "notes", "needs at least two notes")]
    if len(texts) > max_notes:
        idx = np.random.default_rng(seed).choice(len(texts), size=max_notes, replace=False)
        texts = [texts[i] for i in sorted(idx)]
    from sklearn.feature_extraction.text import TfidfVectorizer

    x = TfidfVectorizer(ngram_range=(1, 2), token_pattern=_WORD.pattern, lowercase=True)
    m = x.fit_transform(texts)
    sim = (m @ m.T).toarray()
    np.fill_diagonal(sim, -1.0)
    nearest = sim.max(axis=1)
    return [
        _record(
            "note_self_similarity",
            float(nearest.mean()),
            "lower",
            details={
                "aspect": "diversity",
                "notes": len(texts),
                "near_copy_share": float((nearest >= 0.9).mean()),
            },
        )
    ]


def note_length(*, notes: Notes) -> list[Any]:
    """Mean words per note; quantiles and cut-off notes in ``details``."""
    items = load_notes(notes)
    words = np.array([len(_WORD.findall(n["note"])) for n in items], float)
    q = np.quantile(words, [0.05, 0.5, 0.95])
    return [
        _record(
            "note_length",
            float(words.mean()),
            "target",
            details={
                "aspect": "length",
                "notes": len(items),
                "p5": float(q[0]),
                "median": float(q[1]),
                "p95": float(q[2]),
                "min": float(words.min()),
                "max": float(words.max()),
                "truncated": sum(n.get("finish_reason") == "length" for n in items),
            },
        )
    ]


#: name -> metric function
NOTE_METRICS: dict[str, Callable[..., list[Any]]] = {
    "note_contradictions": note_contradictions,
    "note_fact_coverage": note_fact_coverage,
    "note_phi": note_phi,
    "note_distinct_ngrams": note_distinct_ngrams,
    "note_self_similarity": note_self_similarity,
    "note_length": note_length,
}


def evaluate_notes(
    notes: Notes,
    *,
    patients: PatientSource | Sequence[Patient] | None = None,
    lexicon: str | Path | Lexicon | None = None,
    metrics: Iterable[str] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Run the note metrics; plain JSON-ready data like :func:`healthsynth.evaluate`.

    Returns ``{"records": [MetricRecord.to_dict() ...], "notes": [per-note rows], "meta":
    {...}, "seconds": ...}``. A metric that fails becomes a ``failed`` record.
    """
    started = time.perf_counter()
    names = list(metrics) if metrics is not None else list(NOTE_METRICS)
    unknown = [m for m in names if m not in NOTE_METRICS]
    if unknown:
        raise ParameterError(
            f"note metric '{unknown[0]}' is not known; known note metrics: "
            f"{', '.join(NOTE_METRICS)}"
        )
    items = load_notes(notes)
    rows = check_notes(items, patients=patients, lexicon=lexicon)
    context = {"notes": items, "patients": patients, "lexicon": lexicon, "rows": rows, "seed": seed}
    records = []
    import inspect

    for name in names:
        fn = NOTE_METRICS[name]
        kwargs = {k: v for k, v in context.items() if k in inspect.signature(fn).parameters}
        t0 = time.perf_counter()
        try:
            got = fn(**kwargs)
        except Exception as e:  # a broken metric must not sink the whole evaluation
            got = [
                _record(name, None, "higher", status="failed", message=f"{type(e).__name__}: {e}")
            ]
        took = round(time.perf_counter() - t0, 3)
        for r in got:
            r.seconds = took
            records.append(r.to_dict())
    return {
        "records": records,
        "notes": rows,
        "meta": {"n_notes": len(items), "metrics": names},
        "seconds": round(time.perf_counter() - started, 3),
    }
