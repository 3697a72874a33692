"""A PHI scan of note text: documented patterns plus a name list, no model download.

Recognisers (each finding names its kind and the rule that fired):

* ``email``, ``url``;
* ``ssn``: ``123-45-6789``, or nine digits after "SSN" / "social security";
* ``phone``: North American numbers (``(555) 123-4567``, ``555-123-4567``, ``555.123.4567``,
  ``+1 555 123 4567``), international ``+CC`` numbers, and any 7+ digits after "phone", "tel",
  "fax", "cell", "mobile", "pager" or "call";
* ``record_number``: digits (optionally with letters or dashes) after MRN, medical record,
  record, patient ID, account, chart, hospital, NHS, insurance, member, policy, encounter, case
  or ``#``; and any other run of 7 or more digits;
* ``date``: ``03/14/2021``, ``14.03.21``, ``2021-03-14``, ``March 14, 2021``, ``14 March 2021``,
  ``March 2021``, ``Mar 14`` (a year on its own is not flagged);
* ``address``: a house number and a street type (``12 Oak Street``, ``450 N Maple Ave``),
  ``P.O. Box 12``, a US state code with a ZIP (``IL 62704``), a UK postcode;
* ``name``: a title and a capitalised word (``Mr. Okafor``, ``Dr Jane Reyes``); a label and
  capitalised words (``Patient: Jane Doe``, ``Dictated by Samuel Reyes``); a first name from
  the US Census 1990 list followed by a capitalised word (``Linda Hart``); two capitalised words
  opening ``, a 58-year-old``; and a listed first name alone in mid-sentence that is not also a
  common word (``her daughter Linda``).

The name lists are package data (``data/first_names.txt``, ``data/last_names.txt``, public
domain). Presidio was tried and not used: see ``docs/notes.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

__all__ = ["PHI_KINDS", "PHIFinding", "scan_phi"]

#: every kind of identifier the scan reports
PHI_KINDS = ("name", "date", "phone", "email", "url", "ssn", "record_number", "address")


@dataclass(frozen=True)
class PHIFinding:
    """One identifier found in a note."""

    kind: str
    text: str
    start: int
    end: int
    rule: str


_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_STATES = (
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ "
    "NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC"
).split()
_STREET = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Way|"
    r"Terrace|Circle|Highway|Hwy|Parkway|Pkwy|Square|Close|Crescent)"
)
_CAP = r"[A-Z][a-zA-Z'’-]+"
_LABEL = (
    r"(?:(?:[Pp]atient(?:'s)?\s+)?[Nn]ame|Patient|Pt|Attending|Physician|Provider|Surgeon|"
    r"Resident|Nurse|Author|Cc|Contact|Next of kin|Emergency contact|Guardian|Referring)\s*:"
    r"|(?:[Dd]ictated|[Ss]igned|[Ss]een|[Rr]eferred|[Tt]ranscribed|[Rr]eviewed|[Ee]xamined)\s+by"
)

_RULES: list[tuple[str, str, re.Pattern[str]]] = [
    ("email", "email", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("url", "url", re.compile(r"\bhttps?://\S+|\bwww\.[\w-]+(?:\.[\w-]+)+\S*", re.I)),
    ("ssn", "ssn-dashes", re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")),
    (
        "ssn",
        "ssn-label",
        re.compile(
            r"\b(?:SSN|social security(?: number| no\.?)?)\s*[:#]?\s*(\d[\d -]{7,10}\d)", re.I
        ),
    ),
    (
        "phone",
        "phone-nanp",
        re.compile(r"(?<![\w.])(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]\d{4}(?![\w-])"),
    ),
    ("phone", "phone-intl", re.compile(r"(?<![\w.])\+\d{1,3}(?:[\s.-]?\d{2,4}){2,5}(?!\w)")),
    (
        "phone",
        "phone-label",
        re.compile(
            r"\b(?:phone|telephone|tel|fax|cell|mobile|pager|call(?:ed)?(?: at)?)\.?\s*"
            r"(?:number|no\.?)?\s*[:#]?\s*(\+?[\d(][\d ().-]{6,}\d)",
            re.I,
        ),
    ),
    (
        "record_number",
        "record-label",
        re.compile(
            r"\b(?:MRN|medical record(?: number| no\.?)?|record(?: number| no\.?| #)|"
            r"patient (?:ID|id|number|no\.?)|account(?: number| no\.?)?|acct\.?|"
            r"chart(?: number| no\.?)|hospital (?:number|no\.?)|NHS (?:number|no\.?)|"
            r"insurance (?:ID|number|no\.?)|member (?:ID|number)|policy (?:number|no\.?)|"
            r"encounter (?:ID|number)|case (?:number|no\.?))\s*(?:is\s*)?[:#]*\s*"
            r"([A-Z]{0,3}[-#]?\d[\dA-Z-]{3,})",
            re.I,
        ),
    ),
    ("record_number", "record-hash", re.compile(r"(?<!\w)#\s?(\d{5,})\b")),
    ("record_number", "long-number", re.compile(r"(?<![\d.,])\d{7,}(?![\d,]|\.\d)")),
    (
        "date",
        "date-numeric",
        re.compile(r"(?<![\d./-])\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})(?![\d/-]|\.\d)"),
    ),
    ("date", "date-iso", re.compile(r"\b(?:1[89]|20)\d{2}[-/.](?:0?[1-9]|1[0-2])[-/.]\d{1,2}\b")),
    (
        "date",
        "date-month-day",
        re.compile(rf"\b{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?\b(?:,?\s+\d{{4}})?"),
    ),
    (
        "date",
        "date-day-month",
        re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\.?(?:,?\s+\d{{4}})?\b"),
    ),
    ("date", "date-month-year", re.compile(rf"\b{_MONTH}\.?,?\s+(?:1[89]|20)\d{{2}}\b")),
    (
        "address",
        "street",
        re.compile(rf"\b\d{{1,5}}\s+(?:[NSEW]\.?\s+)?(?:{_CAP}\s+){{1,3}}{_STREET}\b\.?"),
    ),
    ("address", "po-box", re.compile(r"\bP\.?\s?O\.?\s+Box\s+\d+", re.I)),
    ("address", "state-zip", re.compile(rf"\b(?:{'|'.join(_STATES)}),?\s+\d{{5}}(?:-\d{{4}})?\b")),
    ("address", "uk-postcode", re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s+\d[A-Z]{2}\b")),
    (
        "name",
        "title",
        re.compile(
            rf"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?\s+((?:{_CAP})(?:\s+[A-Z]\.)?(?:\s+{_CAP})?)"
        ),
    ),
    (
        "name",
        "label",
        re.compile(rf"(?:{_LABEL})\s*((?:{_CAP})(?:\s+[A-Z]\.)?(?:\s+{_CAP}){{0,2}})"),
    ),
    (
        "name",
        "relative",
        re.compile(
            r"\b(?:daughter|son|husband|wife|partner|spouse|mother|father|sister|brother|friend|"
            r"neighbou?r|caregiver|carer|guardian|niece|nephew|grandson|granddaughter)\s*,?\s+"
            rf"((?:{_CAP})(?:\s+{_CAP})?)"
        ),
    ),
    (
        "name",
        "appositive",
        re.compile(rf"(?m)(?:^|(?<=[.!?]\s))\s*({_CAP}\s+{_CAP}),\s+(?:a|an|the)\s"),
    ),
    (
        "name",
        "opening",
        re.compile(rf"(?m)^\s*({_CAP}\s+{_CAP}),\s+(?:a|an)\s+\d{{1,3}}[\s-]*(?:year|yr)", re.I),
    ),
]

#: capitalised words that the census lists hold but notes use as words (never names alone)
_COMMON = set(
    """
    a an and are as at be but by for from had has have he her his if in is it its me my no not
    of on or our she so the their them then there they this to up us was we were who will with
    you april may june august summer autumn winter spring will mark bill grant hope faith joy
    grace rose ivy iris pearl ruby dawn crystal amber sunny guy art don gene ray van sandy major
    chase lane page hunter parker long young king brown white black green gray grey early post
    care day ward bed blood reed rich young price love pat patient sky star golden rich dale
    glen ed al jack frank sue jean lee chance christian dean son sun moon may mary's min max
    will earl wilson addison graves crohn parkinson hodgkin cushing bell stone hale hill
    field ford west north south east sharp strong small low mass clay lynn drew wade miles
    general internal medicine history physical examination assessment plan impression findings
    technique indication follow discharge admission course condition reason investigations
    past present medical social family review systems labs laboratory vital vitals signs
    subjective objective note summary report ultrasound abdomen liver normal stable patient's
    female male woman man unknown none synthetic anonymous redacted withheld hepatology
    cardiology gastroenterology surgery team service clinic department unit
    """.split()
)


@cache
def _names(which: str) -> frozenset[str]:
    text = resources.files("healthsynth.notes").joinpath(f"data/{which}.txt").read_text("utf-8")
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def _first_name_hits(text: str, taken: list[tuple[int, int]]) -> list[PHIFinding]:
    first, last = _names("first_names"), _names("last_names")
    out = []
    for m in re.finditer(rf"\b({_CAP})(?:\s+({_CAP}))?", text):
        word, nxt = m.group(1), m.group(2)
        low = word.lower().rstrip("'’s")
        if low not in first or low in _COMMON:
            continue
        start = m.start(1)
        if any(s <= start < e for s, e in taken):
            continue
        tail = text[m.end(1) : m.end(1) + 14].lower()
        if tail.startswith(("'s disease", "'s syndrome", "’s disease", " disease", " syndrome")):
            continue
        pair = nxt is not None and nxt.lower() not in _COMMON
        if pair and (nxt.lower() in last or not _sentence_start(text, start)):
            out.append(PHIFinding("name", m.group(0), start, m.end(), "first-name-pair"))
            continue
        if not _sentence_start(text, start) and word.isalpha() and word[1:].islower():
            out.append(PHIFinding("name", word, start, m.end(1), "first-name"))
    return out


def _sentence_start(text: str, i: int) -> bool:
    before = text[:i].rstrip(" \t\"'(")
    return not before or before[-1] in ".!?:\n-•*"


def scan_phi(text: str) -> list[PHIFinding]:
    """Every identifier the recognisers find in ``text``, in text order, without overlaps."""
    found: list[PHIFinding] = []
    for kind, rule, pattern in _RULES:
        for m in pattern.finditer(text):
            g = 1 if m.groups() and m.group(1) is not None else 0
            s, e = m.start(g), m.end(g)
            if kind == "name" and m.group(g).split()[0].lower() in _COMMON:
                continue
            found.append(PHIFinding(kind, text[s:e], s, e, rule))
    found.sort(key=lambda f: (f.start, -(f.end - f.start)))
    kept: list[PHIFinding] = []
    for f in found:
        if all(f.end <= k.start or f.start >= k.end for k in kept):
            kept.append(f)
    kept.extend(_first_name_hits(text, [(k.start, k.end) for k in kept]))
    return sorted(kept, key=lambda f: f.start)
