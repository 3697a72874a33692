"""Known answers for the fact patterns, including the cases they are meant to get right."""

from __future__ import annotations

import pytest

from healthsynth.notes import Patient, check_note, extract_facts, load_lexicon, patient_facts

LEX = load_lexicon()


@pytest.mark.parametrize(
    ("text", "age", "sex"),
    [
        ("A 58-year-old woman with PBC.", 58, "female"),
        ("58 yo M seen in clinic.", 58, "male"),
        ("Age: 71. Sex: F.", 71, "female"),
        ("The patient, 44 years of age, says that he is tired.", 44, "male"),
        ("62F with ascites. Her mother, an 80-year-old, is well.", 62, "female"),
        ("Mr X is aged 39; his wife came along. She drove.", 39, "male"),
        ("Temperature 37.2. The patient is well.", None, None),
        ("MR of the liver; 5 ms echo time.", None, None),  # MR and ms are not titles
    ],
)
def test_age_and_sex(text, age, sex):
    f = extract_facts(text, LEX)
    assert (f.age, f.sex) == (age, sex)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ascites is present.", {"ascites": {"present"}}),
        ("No ascites.", {"ascites": {"absent"}}),
        ("Denies diabetes.", {"diabetes": {"absent"}}),
        (
            "No ascites, hepatomegaly, spider angiomata or edema.",
            {k: {"absent"} for k in ("ascites", "hepatomegaly", "spider angiomata", "edema")},
        ),
        ("Edema: absent. Ascites: present.", {"edema": {"absent"}, "ascites": {"present"}}),
        ("Ascites has been ruled out.", {"ascites": {"absent"}}),
        ("Afebrile, no jaundice, ascites present.", {"ascites": {"present"}}),
        ("No change in ascites since the last visit.", {"ascites": {"present"}}),
        ("Family history: her mother had diabetes.", {}),
        ("Screened for hepatomegaly.", {}),
        ("Return if signs of ascites appear.", {}),
        ("No fever but ascites is worse.", {"ascites": {"present"}}),
        ("History of HTN and T2DM.", {"hypertension": {"present"}, "diabetes": {"present"}}),
        (
            "Mild hepatomegaly. No spider nevi.",
            {"hepatomegaly": {"present"}, "spider angiomata": {"absent"}},
        ),
        ("He had an MI on day -30.", {"myocardial infarction": {"present"}}),
        ("The mi-dose was given.", {}),  # capitals matter for abbreviations
    ],
)
def test_conditions(text, expected):
    assert extract_facts(text, LEX).conditions == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Total bilirubin 1.2 mg/dL.", {"bilirubin": [(1.2, 1)]}),
        (
            "AST of 85 U/L, albumin: 3.50.",
            {"aspartate aminotransferase": [(85.0, 0)], "albumin": [(3.5, 2)]},
        ),
        ("Platelets were 210.", {"platelets": [(210.0, 0)]}),
        ("Bilirubin on day 3 was 2.4.", {"bilirubin": [(2.4, 1)]}),
        (
            "HDL cholesterol 51 and cholesterol 240.",
            {"hdl cholesterol": [(51.0, 0)], "cholesterol": [(240.0, 0)]},
        ),
        (
            "BP 132/84.",
            {"systolic blood pressure": [(132.0, 0)], "diastolic blood pressure": [(84.0, 0)]},
        ),
        ("Alkaline phosphatase (U/L): 1,718.", {"alkaline phosphatase": [(1718.0, 0)]}),
        ("AST and albumin were 85 and 3.5.", {}),  # a list of values is not attributed
        ("Bilirubin is elevated.", {}),
    ],
)
def test_lab_values(text, expected):
    assert extract_facts(text, LEX).labs == expected


def _record(**attrs):
    return patient_facts(Patient(id="1", attributes=attrs), LEX)


@pytest.mark.parametrize(
    ("text", "facts"),
    [
        ("A 58-year-old woman. Bilirubin 14.5. Ascites is present.", []),
        ("A 59-year-old woman.", []),  # 58.8 rounds up
        ("A 64-year-old woman.", ["age"]),
        ("A 58-year-old man.", ["sex"]),
        ("No ascites.", ["condition:ascites"]),
        ("Edema is present.", ["condition:edema"]),
        ("Bilirubin 14 mg/dL.", []),  # within 5%
        ("Bilirubin 10.2 mg/dL.", ["lab:bilirubin"]),
        ("Bilirubin 14.5 then 29 mg/dL.", []),  # "then" ends nothing: first value only
        ("Copper 400.", []),  # not measured: nothing to contradict
    ],
)
def test_check_against_the_record(text, facts):
    record = _record(age=58.77, sex="f", ascites=1.0, edema=0.0, bili=14.5, copper=None)
    found = check_note(extract_facts(text, LEX), record)["contradictions"]
    assert [c["fact"] for c in found] == facts


def test_timeline_record_uses_every_value_and_tracked_items():
    p = Patient(
        id="1",
        attributes={"age": 60, "sex": "male"},
        events=(
            {"day": -10, "table": "events", "item": "diabetes", "value": None},
            {"day": 0, "table": "labs", "item": "chol", "value": 180.0},
            {"day": 300, "table": "labs", "item": "chol", "value": 240.0},
        ),
    )
    record = patient_facts(p, LEX, tracked_items={"htn", "diabetes"})
    assert record.conditions == {"diabetes": True, "hypertension": False}
    assert record.labs == {"cholesterol": [180.0, 240.0]}
    note = "60 yo M with diabetes; cholesterol 240 on day 300. Hypertension is present."
    found = check_note(extract_facts(note, LEX), record)
    assert [c["fact"] for c in found["contradictions"]] == ["condition:hypertension"]
    assert (found["covered"], found["facts"]) == (4, 4)
