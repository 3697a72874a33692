"""Scripted clinical notes for the chat server of :mod:`healthsynth.llm.testing`.

:class:`NoteReplier` reads the patient record a notes prompt carries (its JSON line) and writes
a note about that patient the way a careful model would (varied phrasing, omissions, negated
absent conditions, family history and other statements that are not about the patient), or, as
planned per patient, with one contradiction or one leaked identifier:

* contradictions: ``age`` (5 to 15 years off), ``sex`` (every word and pronoun swapped),
  ``condition_denied`` (a condition the patient has, written as absent), ``condition_invented``
  (one the patient lacks, written as present), ``lab`` (one value 30-70% off);
* leaks: ``name``, ``phone``, ``record_number``, ``date``, ``address``, ``email``, ``ssn``.

The plan is a function of the record alone (:meth:`NoteReplier.plan`), so a test or benchmark
knows what each note holds. Used with :class:`healthsynth.llm.testing.ChatServer`::

    with ChatServer(NoteReplier(contradiction_rate=0.5, leak_rate=0.3)) as server:
        write_notes("synthetic.csv", "notes.jsonl", endpoint=server.url, llm_model="test-model")
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from healthsynth.notes._facts import PatientFacts, patient_facts
from healthsynth.notes._lexicon import Lexicon, load_lexicon
from healthsynth.notes._patients import Patient

__all__ = ["CONTRADICTIONS", "LEAKS", "NoteReplier", "Plan"]

CONTRADICTIONS = ("age", "sex", "condition_denied", "condition_invented", "lab")
LEAKS = ("name", "phone", "record_number", "date", "address", "email", "ssn")

_FIRST = ["Linda", "James", "Maria", "Robert", "Susan", "David", "Karen", "Thomas", "Patricia"]
_FIRST_RARE = ["Ngozi", "Siddharth", "Oluwaseun", "Thandiwe", "Eero", "Kalani", "Yusuf", "Bao"]
_LAST = ["Hart", "Gonzalez", "Miller", "Johnson", "Reyes", "Foster", "Jensen", "Brooks"]
_LAST_RARE = ["Okafor", "Nakamura", "Kowalczyk", "Abernathy-Singh", "Vukovic", "Lindqvist"]
_STREETS = ["Oak Street", "N Maple Ave", "Birchwood Road", "Lakeview Drive", "Elm Court"]
_CITIES = [("Springfield", "IL", "62704"), ("Madison", "WI", "53703"), ("Salem", "OR", "97301")]
_MONTHS = ["January", "March", "April", "June", "September", "November"]


@dataclass(frozen=True)
class Plan:
    """What a scripted note about one patient holds, and the facts it was written from."""

    contradiction: str | None
    leak: str | None
    detail: dict[str, Any] = field(default_factory=dict)


def _digest(record: Mapping[str, Any]) -> int:
    text = json.dumps(record, sort_keys=True, default=str)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def _record_from_prompt(body: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    messages = body.get("messages") or [{}]
    prompt = str(messages[-1].get("content", ""))
    head, _, tail = prompt.partition("The same record as JSON:\n")
    record = json.loads(tail.splitlines()[0]) if tail else {"attributes": {}}
    first = head.splitlines()[0].lower() if head else ""
    kind = (
        "progress note"
        if "progress note" in first
        else "radiology report"
        if "imaging" in first
        else "discharge summary"
    )
    return record, kind


class NoteReplier:
    """Writes scripted notes grounded in the record each notes prompt carries.

    Parameters
    ----------
    contradiction_rate, leak_rate
        Share of patients whose note gets one contradiction / one leaked identifier (drawn
        per patient from a hash of its record, so reruns agree).
    contradictions, leaks
        The kinds to draw from.
    omit
        Share of the patient's facts a note leaves out (omissions are not contradictions).
    vocabulary
        Event items the source tracks (timelines): absent conditions are drawn among them.
    lexicon
        The concepts (default: the packaged lexicon).
    """

    def __init__(
        self,
        *,
        contradiction_rate: float = 0.0,
        leak_rate: float = 0.0,
        contradictions: Sequence[str] = CONTRADICTIONS,
        leaks: Sequence[str] = LEAKS,
        omit: float = 0.2,
        vocabulary: set[str] | None = None,
        lexicon: Lexicon | None = None,
    ) -> None:
        self.contradiction_rate = contradiction_rate
        self.leak_rate = leak_rate
        self.contradictions = tuple(contradictions)
        self.leaks = tuple(leaks)
        self.omit = omit
        self.vocabulary = {v.lower() for v in vocabulary} if vocabulary else None
        self.lexicon = lexicon or load_lexicon()

    # -- planning ------------------------------------------------------------------------------
    def facts(self, record: Mapping[str, Any]) -> PatientFacts:
        """The record's facts as the checks read them."""
        patient = Patient.from_dict({"id": "", **record})
        return patient_facts(patient, self.lexicon, tracked_items=self.vocabulary)

    def plan(self, record: Mapping[str, Any]) -> Plan:
        """The contradiction and leak (or None) of this record's note."""
        rng = np.random.default_rng(_digest(record))
        f = self.facts(record)
        feasible = {
            "age": f.age is not None,
            "sex": f.sex is not None,
            "condition_denied": any(f.conditions.values()),
            "condition_invented": any(not v for v in f.conditions.values()),
            "lab": bool(f.labs),
        }
        options = [c for c in self.contradictions if feasible.get(c)]
        contradiction = None
        if options and rng.random() < self.contradiction_rate:
            contradiction = options[int(rng.integers(len(options)))]
        leak = None
        if self.leaks and rng.random() < self.leak_rate:
            leak = self.leaks[int(rng.integers(len(self.leaks)))]
        return Plan(contradiction, leak)

    # -- writing -------------------------------------------------------------------------------
    def __call__(self, body: Mapping[str, Any]) -> str:
        """The note for a chat request body."""
        record, kind = _record_from_prompt(body)
        text, _ = self.write(record, kind=kind, seed=body.get("seed"))
        return text

    def write(
        self, record: Mapping[str, Any], *, kind: str = "discharge summary", seed: Any = None
    ) -> tuple[str, Plan]:
        """A note about ``record`` and the plan it follows (with the leaked text, if any)."""
        plan = self.plan(record)
        f = self.facts(record)
        rng = np.random.default_rng(
            [_digest(record), int(seed or 0) % 2**32, zlib.crc32(kind.encode())]
        )
        w = _Writer(rng, self.lexicon, f, plan, self.omit)
        body = w.note(kind, record)
        detail = dict(w.detail)
        if plan.leak is not None:
            sentence, leaked = _leak(plan.leak, rng, w.female)
            body = sentence + "\n" + body if rng.random() < 0.5 else body + "\n" + sentence
            detail["leaked"] = leaked
        return body, Plan(plan.contradiction, plan.leak, detail)


class _Writer:
    def __init__(
        self, rng: np.random.Generator, lex: Lexicon, f: PatientFacts, plan: Plan, omit: float
    ) -> None:
        self.rng, self.lex, self.f, self.plan, self.omit = rng, lex, f, plan, omit
        self.detail: dict[str, Any] = {}
        female = f.sex == "female"
        if plan.contradiction == "sex":
            female = not female
        self.female = female
        self.cond = dict(sorted(f.conditions.items()))
        self.labs = {k: v[0] for k, v in sorted(f.labs.items())}
        if plan.contradiction == "condition_denied":
            name = self._pick([k for k, v in self.cond.items() if v])
            self.cond[name] = False
            self.detail["condition"] = name
        elif plan.contradiction == "condition_invented":
            name = self._pick([k for k, v in self.cond.items() if not v])
            self.cond[name] = True
            self.detail["condition"] = name
        if plan.contradiction == "lab":
            name = self._pick(sorted(self.labs))
            # 30-70% beyond every value the record holds for it (timelines hold several)
            values = f.labs[name]
            if rng.random() < 0.5 and min(values) > 0:
                new = min(values) * float(rng.uniform(0.3, 0.7))
            else:
                new = max(max(values), 1.0) * float(rng.uniform(1.3, 1.7))
            self.labs[name] = new
            self.detail["lab"] = name

    def _pick(self, options: list[str]) -> str:
        return options[int(self.rng.integers(len(options)))]

    def _term(self, name: str) -> str:
        c = next(c for c in self.lex.concepts if c.name == name)
        terms = [t for t in c.terms if len(t) > 3] or list(c.terms)
        return terms[int(self.rng.integers(len(terms)))]

    def _age(self) -> int | None:
        if self.f.age is None:
            return None
        age = int(round(self.f.age)) if self.rng.random() < 0.5 else int(self.f.age)
        if self.plan.contradiction == "age":
            shift = int(self.rng.integers(5, 16))
            age = age + shift if (age - shift < 18 or self.rng.random() < 0.5) else age - shift
        return age

    def opener(self) -> str:
        age = self._age()
        noun = self._pick(
            ["woman", "female", "lady"] if self.female else ["man", "male", "gentleman"]
        )
        letter = "F" if self.female else "M"
        pronoun = "she" if self.female else "he"
        if age is None:
            return f"The patient is a {noun}."
        forms = [
            f"A {age}-year-old {noun} was seen",
            f"{age} yo {letter} seen",
            f"The patient is a {noun} aged {age}",
            f"Age: {age}. Sex: {'Female' if self.female else 'Male'}",
            f"{age}-year-old {noun}",
            f"The patient, {age} years of age, says that {pronoun} feels tired",
            f"{'Mrs' if self.female else 'Mr'} X is {age} years old",
        ]
        return self._pick(forms) + "."

    def _value(self, name: str, v: float) -> str:
        c = next(c for c in self.lex.concepts if c.name == name)
        if v == int(v):
            shown = str(int(v))
        elif self.rng.random() < 0.5:
            shown = f"{v:.{max(0, 2 - int(np.floor(np.log10(abs(v)))))}f}" if v else "0"
        else:
            shown = f"{v:.6g}"
        unit = f" {c.unit}" if c.unit and self.rng.random() < 0.7 else ""
        term = self._term(name)
        forms = [
            f"{term} {shown}{unit}",
            f"{term} of {shown}{unit}",
            f"{term}: {shown}{unit}",
            f"{term} was {shown}{unit}",
            f"{term} measured at {shown}{unit}",
            f"{term} on day 2 was {shown}{unit}",
            f"{term} ({c.unit or 'value'}): {shown}",
            f"{term} {shown}{unit} (reference range not given)",
        ]
        return self._pick(forms)

    def conditions_text(self) -> list[str]:
        out = []
        he = "she" if self.female else "he"
        absent = []
        for name, has in self.cond.items():
            forced = name == self.detail.get("condition")
            if not forced and self.rng.random() < self.omit:
                continue
            term = self._term(name)
            if has:
                out.append(
                    self._pick(
                        [
                            f"{_cap(term)} is present.",
                            f"Known {term}.",
                            f"History of {term}.",
                            f"Examination revealed {term}.",
                            f"{_cap(term)}: present.",
                            f"Positive for {term}.",
                            f"{_cap(he)} has {term}, with no worsening of {term} lately.",
                            f"Findings consistent with {term}.",
                            f"{_cap(he)} was treated for {term}.",
                            f"No change in {term} since the last visit.",
                        ]
                    )
                )
            else:
                absent.append(term)
        if len(absent) >= 3 and self.rng.random() < 0.5:
            out.append(f"No {', '.join(absent[:-1])} or {absent[-1]}.")
            absent = []
        for term in absent:
            out.append(
                self._pick(
                    [
                        f"No {term}.",
                        f"{_cap(term)}: absent.",
                        f"There is no evidence of {term}.",
                        f"Negative for {term}.",
                        f"{_cap(term)} was not seen.",
                        f"Denies {term}.",
                        f"Without {term}.",
                        f"{_cap(term)} is absent.",
                        f"No clinical signs of {term}.",
                        f"{_cap(term)} has been ruled out.",
                        f"There was no {term} on examination.",
                        f"Free of {term}.",
                    ]
                )
            )
        spare = [n for n, has in self.cond.items() if not has and n != self.detail.get("condition")]
        if spare and self.rng.random() < 0.4:
            rel = "her" if self.female else "his"
            term = self._term(self._pick(spare))
            out.append(
                self._pick(
                    [
                        f"Family history: {rel} mother had {term}.",
                        f"Screened for {term}.",
                        f"The risk of {term} was discussed.",
                        f"Return if signs of {term} appear.",
                    ]
                )
            )
        return out

    def labs_text(self) -> list[str]:
        out = []
        for name, v in self.labs.items():
            if name != self.detail.get("lab") and self.rng.random() < self.omit:
                continue
            out.append(self._value(name, v) + ".")
        return out

    def events_text(self, record: Mapping[str, Any]) -> list[str]:
        out = []
        for e in record.get("events") or []:
            c = self.lex.for_item(str(e.get("item")))
            if c is None or c.kind != "condition" or not self.cond.get(c.name, True):
                continue
            out.append(f"{_cap(self._term(c.name))} was diagnosed on day {e['day']}.")
        return out[:4]

    def note(self, kind: str, record: Mapping[str, Any]) -> str:
        conds = self.conditions_text()
        labs = self.labs_text()
        self.rng.shuffle(conds)
        events = self.events_text(record)
        he = "She" if self.female else "He"
        if kind == "progress note":
            parts = [
                "S: " + self.opener() + f" {he} reports feeling well.",
                "O: " + " ".join(labs or ["Labs pending."]),
                "A: " + " ".join(conds + events or ["Stable."]),
                f"P: Continue current management; {he.lower()} will return in three months.",
            ]
        elif kind == "radiology report":
            parts = [
                "Clinical indication: " + self.opener() + " " + " ".join(labs),
                "Technique: Grayscale and Doppler ultrasound of the abdomen.",
                "Findings: " + " ".join(conds + events),
                "Impression: Findings as above.",
            ]
        else:
            parts = [
                "Reason for admission: Assessment of chronic liver disease.",
                "History of present illness: " + self.opener() + f" {he} was admitted for review.",
                "Past medical history: " + " ".join(events or ["As below."]),
                "Examination: " + " ".join(conds),
                "Investigations: " + " ".join(labs),
                "Hospital course: Uneventful.",
                "Condition at discharge: Stable.",
                "Follow-up: Clinic review in six weeks.",
            ]
        return "\n".join(parts)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _leak(kind: str, rng: np.random.Generator, female: bool) -> tuple[str, str]:
    """A sentence holding one identifier of ``kind``, and the identifier itself."""

    def pick(xs: Sequence[str]) -> str:
        return xs[int(rng.integers(len(xs)))]

    def digits(n: int) -> str:
        return "".join(str(int(d)) for d in rng.integers(0, 10, n))

    if kind == "name":
        first = pick(_FIRST if rng.random() < 0.5 else _FIRST_RARE)
        last = pick(_LAST if rng.random() < 0.5 else _LAST_RARE)
        title = "Ms." if female else "Mr."
        rel = pick(["daughter", "son", "husband", "wife", "sister"])
        names = [
            (f"Patient: {first} {last}.", f"{first} {last}"),
            (f"{title} {last} tolerated the stay well.", last),
            (f"{first} {last}, a patient of this clinic, was reviewed.", f"{first} {last}"),
            (f"Dictated by Dr. {first} {last}.", f"{first} {last}"),
            (f"Accompanied by {'her' if female else 'his'} {rel}, {first}.", first),
        ]
        return names[int(rng.integers(len(names)))]
    if kind == "phone":
        area, mid, end = digits(3), digits(3), digits(4)
        number = pick([f"({area}) {mid}-{end}", f"{area}-{mid}-{end}", f"{area}.{mid}.{end}"])
        return pick([f"Contact: {number}.", f"Can be reached at {number}."]), number
    if kind == "record_number":
        number = digits(int(rng.integers(6, 10)))
        label = pick(["MRN: ", "Medical record number ", "Acct #: ", "Patient ID: HX-"])
        leaked = ("HX-" if label.endswith("HX-") else "") + number
        return f"{label}{number}.", leaked
    if kind == "date":
        d, m, y = int(rng.integers(1, 29)), int(rng.integers(1, 13)), int(rng.integers(1990, 2024))
        month = pick(_MONTHS)
        date = pick(
            [
                f"{m:02d}/{d:02d}/{y}",
                f"{y}-{m:02d}-{d:02d}",
                f"{month} {d}, {y}",
                f"{d} {month} {y}",
            ]
        )
        return pick([f"Admitted on {date}.", f"Date of birth: {date}.", f"Seen on {date}."]), date
    if kind == "address":
        city, state, zip_code = _CITIES[int(rng.integers(len(_CITIES)))]
        street = f"{int(rng.integers(2, 9999))} {pick(_STREETS)}"
        address = f"{street}, {city}, {state} {zip_code}"
        return f"Lives at {address}.", street
    if kind == "email":
        user = pick(["j.hart", "mreyes72", "patient.k", "lindaf"])
        address = f"{user}@{pick(['example.org', 'mail.example.com'])}"
        return f"Email: {address}.", address
    ssn = f"{digits(3)}-{digits(2)}-{digits(4)}"
    return f"SSN {ssn}.", ssn
