"""Known answers for the PHI recognisers: identifiers found, clinical text left alone."""

from __future__ import annotations

import pytest

from healthsynth.notes import scan_phi


@pytest.mark.parametrize(
    ("text", "kind", "found"),
    [
        ("Patient: Jane Doe.", "name", "Jane Doe"),
        ("Mr. Okafor tolerated the stay.", "name", "Okafor"),
        ("Dictated by Dr. Samuel Reyes.", "name", "Samuel Reyes"),
        ("Accompanied by her daughter, Ngozi.", "name", "Ngozi"),
        ("Seen with Linda Hart today.", "name", "Linda Hart"),
        ("Kalani Lindqvist, a patient of this clinic, was reviewed.", "name", "Kalani Lindqvist"),
        ("Call (555) 123-4567 with questions.", "phone", "(555) 123-4567"),
        ("Reached at 555.123.4567.", "phone", "555.123.4567"),
        ("Tel: +44 20 7946 0958.", "phone", "+44 20 7946 0958"),
        ("MRN: 00482913.", "record_number", "00482913"),
        ("Acct #: 698074.", "record_number", "698074"),
        ("Patient ID: HX-204918.", "record_number", "HX-204918"),
        ("Admitted on 03/14/2021.", "date", "03/14/2021"),
        ("Born 1962-07-04.", "date", "1962-07-04"),
        ("Seen on March 14, 2021.", "date", "March 14, 2021"),
        ("Seen on 14 March 2021.", "date", "14 March 2021"),
        ("Lives at 12 Oak Street, Springfield.", "address", "12 Oak Street"),
        ("Mail to P.O. Box 1182.", "address", "P.O. Box 1182"),
        ("Springfield, IL 62704.", "address", "IL 62704"),
        ("Email: j.hart@example.org.", "email", "j.hart@example.org"),
        ("See www.example-clinic.org for details.", "url", "www.example-clinic.org"),
        ("SSN 219-09-9999.", "ssn", "219-09-9999"),
    ],
)
def test_identifier_is_found(text, kind, found):
    hits = [(f.kind, f.text) for f in scan_phi(text)]
    assert (kind, found) in hits, hits


@pytest.mark.parametrize(
    "text",
    [
        "A 58-year-old woman with primary biliary cholangitis, ascites and hepatomegaly.",
        "Bilirubin 14.5 mg/dL, albumin 2.6 g/dL, platelets 190 x10^9/L, PT 12.2 s.",
        "BP 132/84, HR 78. Temperature 37.2 C. Follow-up in 6 weeks, on day 42.",
        "History of diabetes mellitus since 2015; diagnosed on day -365.",
        "Examination: no spider angiomata. Impression: findings as above.",
        "Wilson's disease was excluded; Addison's disease is not suspected.",
        "Will review in clinic. Grace period for the medication refill.",
        "Alkaline phosphatase 1718 U/L; urine copper 156 ug/day; stage 4 of 4.",
    ],
)
def test_clinical_text_is_left_alone(text):
    assert scan_phi(text) == []
