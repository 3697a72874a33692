"""Facts a note states about its patient, read with documented patterns, and their check.

What is read (``docs/notes.md`` lists every pattern):

* **age**: the first of ``58-year-old``, ``58 yo`` / ``58 y/o``, ``aged 58`` / ``Age: 58``,
  ``58F`` / ``58M``;
* **sex**: explicit words (woman, female, Mrs, ``Sex: F``, ``58F`` ...) weigh 3, pronouns
  (she, her, he, his ...) weigh 1; the heavier side is the stated sex;
* **conditions** (the lexicon's terms): each mention is *present*, *absent* (a NegEx-style
  trigger such as "no", "denies", "without", "negative for" up to six words before it in the
  same clause, or "absent", "not seen", "ruled out" after it) or *not about the patient*
  (family history, screening, risk, "rule out", "return if");
* **lab values** (the lexicon's terms): the number after the term (``bilirubin 1.2 mg/dL``,
  ``AST of 85``, ``albumin: 3.5``, ``platelets were 210``), skipping ``on day N``; and blood
  pressure written ``BP 132/84``.

The check compares them with the patient's record: an age more than one year off, another sex,
a condition the record has stated only as absent (or one it lacks stated only as present), a
lab value that matches none of the patient's values within 5% (or the rounding of the stated
number, whichever is wider). Facts the note leaves out are omissions, not contradictions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from healthsynth.notes._lexicon import Concept, Lexicon
from healthsynth.notes._patients import Patient
from healthsynth.notes._prompts import truthy

__all__ = ["NoteFacts", "PatientFacts", "check_note", "extract_facts", "patient_facts"]

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])|\n+")
_AGE = [
    re.compile(r"(?<![\d.])(\d{1,3})[\s-]*(?:years?|yrs?)[\s-]*old\b", re.I),
    re.compile(r"(?<![\d.])(\d{1,3})\s*(?:yo|y/o|y\.o\.)(?![\w])", re.I),
    re.compile(r"\bage[d:]?\s*:?\s*(\d{1,3})\b", re.I),
    re.compile(r"(?<![\d.])(\d{1,3})\s*years?\s+of\s+age\b", re.I),
    re.compile(r"(?<![\d.\w])(\d{1,3})\s?([MF])\b"),
]
_YO = r"(?:\s*-?\s*(?:yo|y/o|y\.o\.|years?[\s-]old|yr[\s-]old))?\s*"
_FEMALE = [
    re.compile(r"\b(?:woman|female|lady|girl)\b", re.I),
    re.compile(rf"\b(?:Mrs|Ms|Miss)\b|(?<![\d.\w])\d{{1,3}}{_YO}F\b"),
    re.compile(r"\b(?:sex|gender)\s*:\s*F\b", re.I),
]
_MALE = [
    re.compile(r"\b(?:man|male|gentleman|boy)\b", re.I),
    re.compile(rf"\bMr\b|(?<![\d.\w])\d{{1,3}}{_YO}M\b"),
    re.compile(r"\b(?:sex|gender)\s*:\s*M\b", re.I),
]
_SHE = re.compile(r"\b(?:she|her|hers|herself)\b", re.I)
_HE = re.compile(r"\b(?:he|him|his|himself)\b", re.I)

_NEG_PRE = re.compile(
    r"\b(?:no|not|without|denies|denied|deny|denying|negative for|no evidence of|no signs? of|"
    r"no history of|no known|free of|absence of|absent|ruled out|rules out|never had|never|nor|"
    r"neither|lacks|unremarkable for|no clinical (?:evidence|signs?) of)\b",
    re.I,
)
_PSEUDO = re.compile(
    r"\b(?:no (?:significant )?(?:change|increase|decrease|worsening|improvement) (?:in|of)|"
    r"not only|no further|not improved|not resolved|not (?:well )?controlled|not worsened)\b",
    re.I,
)
_SCOPE_END = re.compile(
    r"\b(?:but|however|although|though|except|apart from|aside from|yet|which|who|whereas)\b|[;:]",
    re.I,
)
_NEG_POST = re.compile(
    r"^\s*(?:[:=-]|was|is|were|are|has been|have been)?\s*(?:absent|not present|not seen|"
    r"not identified|not detected|not found|not noted|not observed|negative|none|no|"
    r"ruled out|excluded)\b",
    re.I,
)
_AFFIRM_POST = re.compile(
    r"^\s*(?:[:=-]|was|is|were|are)?\s*(?:present|positive|yes|noted|seen|confirmed)\b", re.I
)
_OTHER_SUBJECT = re.compile(
    r"\b(?:family history|mother|father|sister|brother|sibling|parents?|son|daughter|aunt|uncle|"
    r"grand(?:mother|father)|screen(?:ed|ing)? for|risk (?:of|for)|rule out|r/o|to exclude|"
    r"monitor(?:ing)? for|watch for|return if|if (?:she|he|the patient) develops?|prevent(?:ion)?"
    r" of|prophylaxis)\b",
    re.I,
)
_NUMBER = re.compile(
    r"^(?:\s*\([^)]{1,24}\))?[\s,]*(?:(?:level|levels|count|concentration|value|was|were|is|"
    r"of|at|measured|measuring|came back|reached|about|approximately|around|remained|"
    r"elevated|raised|low|high|normal|mildly|markedly|to)\b[\s,]*){0,4}[:=~\s-]*"
    r"(?<![\w.])([<>]?\s*\d+(?:,\d{3})*(?:\.\d+)?)(?![\d/])",
    re.I,
)
_DAY = re.compile(r"\b(?:on|at|by|from)?\s*(?:hospital\s+)?day\s+-?\d+,?", re.I)
_BP = re.compile(r"\b(?:blood pressure|BP)\s*(?:of|was|is|:)?\s*(\d{2,3})\s*/\s*(\d{2,3})\b", re.I)


@dataclass
class NoteFacts:
    """What one note states: age, sex, conditions (present/absent) and lab values."""

    age: int | None = None
    sex: str | None = None
    sex_score: dict[str, int] = field(default_factory=dict)
    conditions: dict[str, set[str]] = field(default_factory=dict)
    labs: dict[str, list[tuple[float, int]]] = field(default_factory=dict)


@dataclass
class PatientFacts:
    """What the record says: age (and up to when), sex, conditions and lab values."""

    age: float | None = None
    sex: str | None = None
    conditions: dict[str, bool] = field(default_factory=dict)
    labs: dict[str, list[float]] = field(default_factory=dict)


def _clauses(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text) if s and s.strip()]


def _matches(sentence: str, concepts: Iterable[Concept]) -> list[tuple[int, int, Concept]]:
    """Term matches in a sentence, longest first, without overlaps, in text order."""
    found = []
    for c in concepts:
        for m in c.pattern().finditer(sentence):
            found.append((m.start(), m.end(), c))
    found.sort(key=lambda t: (-(t[1] - t[0]), t[0]))
    taken: list[tuple[int, int, Concept]] = []
    for s, e, c in found:
        if all(e <= s2 or s >= e2 for s2, e2, _ in taken):
            taken.append((s, e, c))
    return sorted(taken, key=lambda t: t[0])


def _status(
    sentence: str,
    start: int,
    end: int,
    spans: list[tuple[int, int]] = (),  # type: ignore[assignment]
) -> str | None:
    """``present``, ``absent`` or None (not about the patient) for the mention at start:end.

    ``spans`` are the other concept mentions of the sentence: in the negation window they do
    not count, nor do "or", "and" and "nor", so "no ascites, hepatomegaly, spider angiomata or
    edema" negates all four.
    """
    before = sentence[:start]
    for s, e in sorted(spans, reverse=True):
        if e <= start:
            before = before[:s] + "\x00" + before[e:]
    cut = max((m.end() for m in _SCOPE_END.finditer(before)), default=0)
    clause = before[cut:]
    if _OTHER_SUBJECT.search(clause):
        return None
    after = sentence[end : end + 40]
    if _AFFIRM_POST.match(after):
        return "present"
    if _NEG_POST.match(after):
        return "absent"
    clause_wo_pseudo = _PSEUDO.sub(" ", clause)
    negs = list(_NEG_PRE.finditer(clause_wo_pseudo))
    if negs:
        between = clause_wo_pseudo[negs[-1].end() :]
        words = re.findall(r"[\w'/-]+", between)
        # other mentions of a list ("no X, Y or Z") and its conjunctions do not count
        if len([w for w in words if w not in ("\x00", "or", "and", "nor")]) <= 6:
            return "absent"
    return "present"


def _stated_number(after: str) -> tuple[float, int] | None:
    after = _DAY.sub(" ", after)
    m = _NUMBER.match(after)
    if not m:
        return None
    raw = m.group(1).lstrip("<> ").replace(",", "")
    # a list of numbers after "and" belongs to a list of terms ("AST and ALT were 85 and 40")
    if re.search(r"\band\b", after[: m.start(1)], re.I):
        return None
    # ... and so does a number followed by more numbers ("were 85 and 3.5")
    if re.match(r"\s*(?:[^\s\d,.;]+\s*)?(?:,|and)\s*\d", after[m.end(1) :]):
        return None
    decimals = len(raw.split(".", 1)[1]) if "." in raw else 0
    return float(raw), decimals


def extract_facts(text: str, lexicon: Lexicon) -> NoteFacts:
    """Read age, sex, conditions and lab values from a note (see the module's patterns)."""
    facts = NoteFacts()
    # the earliest age statement in the note is the patient's (later ones may be relatives')
    positions = [(m.start(), int(m.group(1))) for p in _AGE for m in [p.search(text)] if m]
    positions = [(s, a) for s, a in positions if 0 < a < 130]
    if positions:
        facts.age = min(positions)[1]
    female = 3 * sum(len(p.findall(text)) for p in _FEMALE) + len(_SHE.findall(text))
    male = 3 * sum(len(p.findall(text)) for p in _MALE) + len(_HE.findall(text))
    facts.sex_score = {"female": female, "male": male}
    if female != male:
        facts.sex = "female" if female > male else "male"
    conditions = [c for c in lexicon.concepts if c.kind == "condition"]
    labs = [c for c in lexicon.concepts if c.kind == "lab"]
    by_name = {c.name: c for c in labs}
    for sentence in _clauses(text):
        found = _matches(sentence, conditions + labs)
        spans = [(s, e) for s, e, _ in found]
        for start, end, concept in found:
            if concept.kind == "condition":
                status = _status(sentence, start, end, spans)
                if status is not None:
                    facts.conditions.setdefault(concept.name, set()).add(status)
            else:
                got = _stated_number(sentence[end : end + 80])
                if got is not None:
                    facts.labs.setdefault(concept.name, []).append(got)
        for m in _BP.finditer(sentence):
            for name, group in (("systolic blood pressure", 1), ("diastolic blood pressure", 2)):
                if name in by_name:
                    facts.labs.setdefault(name, []).append((float(m.group(group)), 0))
    return facts


def patient_facts(
    patient: Patient, lexicon: Lexicon, *, tracked_items: set[str] | None = None
) -> PatientFacts:
    """The checkable facts of a record.

    ``tracked_items`` are the event items the source records for anyone (lower case): a
    condition carried by one of them that this patient never has is *absent*. Without it, only
    the patient's own items count.
    """
    out = PatientFacts()
    flag_sex = None
    for col, v in patient.attributes.items():
        role = lexicon.role(col)
        if role == "age" and isinstance(v, (int, float)) and not isinstance(v, bool):
            out.age = float(v)
        elif role == "sex" and v is not None:
            s = str(v).strip().lower()
            out.sex = {"f": "female", "female": "female", "woman": "female", "m": "male"}.get(
                s, "male" if s in ("male", "man") else None
            )
        elif role in ("male_flag", "female_flag"):
            t = truthy(v)
            if t is not None:
                flag_sex = "male" if t == (role == "male_flag") else "female"
        else:
            concept = lexicon.for_column(col)
            if concept is None or v is None:
                continue
            if concept.kind == "condition":
                t = truthy(v)
                if t is not None:
                    out.conditions[concept.name] = t
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                out.labs.setdefault(concept.name, []).append(float(v))
    out.sex = out.sex or flag_sex
    own = {str(e["item"]).lower() for e in patient.events}
    tracked = (tracked_items or set()) | own
    for item in sorted(tracked):
        concept = lexicon.for_item(item)
        if concept is not None and concept.kind == "condition":
            has = any(lexicon.for_item(i) is concept for i in own)
            out.conditions[concept.name] = out.conditions.get(concept.name, False) or has
    for e in patient.events:
        concept = lexicon.for_item(e["item"])
        v = e.get("value")
        if concept is not None and concept.kind == "lab" and isinstance(v, (int, float)):
            out.labs.setdefault(concept.name, []).append(float(v))
    return out


def _close(stated: float, decimals: int, values: list[float]) -> bool:
    tol_round = 0.5 * 10.0 ** (-decimals) + 1e-9
    return any(abs(stated - v) <= max(0.05 * abs(v), tol_round) for v in values)


def check_note(note: NoteFacts, record: PatientFacts) -> dict[str, Any]:
    """Compare what a note states with its record.

    Returns ``contradictions`` (one ``{"fact", "stated", "record"}`` each), ``stated`` (the
    facts the note gives that the record can confirm or refute) and ``covered`` / ``facts``
    (how many of the record's age, sex, present conditions and labs the note mentions).
    """
    bad: list[dict[str, Any]] = []
    stated = 0
    covered = 0
    total = 0
    if record.age is not None:
        total += 1
        if note.age is not None:
            stated += 1
            covered += 1
            if not (math.floor(record.age) - 1 <= note.age <= math.ceil(record.age) + 1):
                bad.append({"fact": "age", "stated": note.age, "record": record.age})
    if record.sex is not None:
        total += 1
        if note.sex is not None:
            stated += 1
            covered += 1
            if note.sex != record.sex:
                bad.append({"fact": "sex", "stated": note.sex, "record": record.sex})
    for name, has in record.conditions.items():
        total += int(has)
        said = note.conditions.get(name)
        if not said:
            continue
        stated += 1
        covered += int(has and "present" in said)
        if has and said == {"absent"}:
            bad.append({"fact": f"condition:{name}", "stated": "absent", "record": "present"})
        elif not has and said == {"present"}:
            bad.append({"fact": f"condition:{name}", "stated": "present", "record": "absent"})
    for name, values in record.labs.items():
        total += 1
        said_values = note.labs.get(name)
        if not said_values:
            continue
        stated += 1
        covered += 1
        wrong = [v for v, d in said_values if not _close(v, d, values)]
        if wrong:
            shown = values[0] if len(values) == 1 else f"{len(values)} values"
            bad.append({"fact": f"lab:{name}", "stated": wrong[0], "record": shown})
    return {"contradictions": bad, "stated": stated, "covered": covered, "facts": total}
