"""ICD-10-CM sex- and age-specific code groups, checked against the code system itself."""

from __future__ import annotations

import pandas as pd
import pytest

from healthsynth.errors import ParameterError
from healthsynth.knowledge import CODE_GROUPS, group_prefixes, icd10cm_rules
from healthsynth.knowledge._icd10cm import _cm

cm = _cm()  # simple_icd_10_cm, imported without its deprecation noise

SEX_WORDS = {
    "female": (
        "female",
        "uter",
        "ovar",
        "cervix",
        "vagin",
        "vulva",
        "gyneco",
        "pregnan",
        "gestation",
        "delivery",
        "maternal",
        "endometri",
        "placenta",
        "antenatal",
        "fallopian",
    ),
    "male": ("male", "prostat", "testi", "penis", "hypospadias", "epididymis"),
}


@pytest.mark.parametrize("group", list(CODE_GROUPS))
def test_every_item_is_a_real_code_or_block(group):
    for g in CODE_GROUPS[group]:
        for item in g.items:
            assert cm.is_valid_item(item), item
    prefixes = group_prefixes(group)
    assert prefixes == tuple(sorted(set(prefixes)))
    for p in prefixes:
        assert cm.is_valid_item(p), p
        assert "." not in p and p == p.upper()


@pytest.mark.parametrize("group", ["female", "male"])
def test_sex_groups_are_sex_specific_by_title(group):
    # every item's own title (or its chapter's) names a sex-specific organ or state
    for g in CODE_GROUPS[group]:
        for item in g.items:
            title = cm.get_description(item).lower()
            if group == "male":
                title = title.replace("female", "")
            assert any(w in title for w in SEX_WORDS[group]), (item, title)


def test_groups_do_not_overlap_between_sexes():
    assert not set(group_prefixes("female")) & set(group_prefixes("male"))


def test_chapters_expand_to_their_categories():
    maternal = group_prefixes("maternal")
    assert "O80" in maternal and "O9A" in maternal and "Z3A" in maternal
    assert all(p[0] == "O" or p.startswith("Z3") for p in maternal)
    chapter15 = [c for c in cm.get_descendants("15") if cm.is_category(c)]
    assert set(chapter15) <= set(maternal)
    newborn = group_prefixes("newborn")
    assert {"P07", "P96", "Z38", "Z05", "Z0011"} <= set(newborn)


def _frame(rows):
    return pd.DataFrame(rows, columns=["dx", "sex", "age"])


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        # (code, {rule group: expected "then" column or None if no rule applies})
        ("N40.1", {"male"}),
        ("N401", {"male"}),
        ("C61", {"male"}),
        ("D07.5", {"male"}),
        ("D07.1", {"female"}),
        ("O80", {"female", "maternal-age"}),
        ("o9a.11", {"female", "maternal-age"}),
        ("Z3A.20", {"female", "maternal-age"}),
        ("P07.3", {"newborn-age"}),
        ("Z38.00", {"newborn-age"}),
        ("Z00.00", {"adult-age"}),
        ("Z00.121", {"child-age"}),
        ("I10", set()),
        ("C50.911", set()),  # breast cancer: not sex-specific
        ("E11.9", set()),
    ],
)
def test_which_rules_apply_to_a_code(code, expected):
    rules = icd10cm_rules("dx", sex_column="sex", age_column="age")
    df = _frame([(code, "F", 30)])
    applies = {r.name.split(":")[0].removeprefix("icd10cm-") for r in rules if r.applies(df)[0]}
    assert applies == expected


def test_known_violations():
    rules = {
        r.name: r
        for r in icd10cm_rules("dx", sex_column="sex", female=["f"], male=["m"], age_column="age")
    }
    df = _frame(
        [
            ("N40.1", "f", 70),  # 0 male-only code on a woman
            ("N40.1", "M", 70),  # 1 fine ("M" matches "m" case-blind)
            ("O80", "m", 30),  # 2 pregnancy code on a man
            ("O80", "F", 11),  # 3 too young for a delivery
            ("O80", "F", 56),  # 4 too old
            ("O80", "F", None),  # 5 missing age does not violate
            ("P07.3", "M", 0),  # 6 fine
            ("P07.3", "M", 2),  # 7 newborn code at age 2
            ("I10", "f", 200),  # 8 no ICD rule for I10
            (None, "m", 30),  # 9 missing code: no rule applies
        ]
    )
    bad = {name: list(r.violations(df).nonzero()[0]) for name, r in rules.items()}
    assert bad["icd10cm-male:dx"] == [0]
    assert bad["icd10cm-female:dx"] == [2]
    assert bad["icd10cm-maternal-age:dx"] == [3, 4]
    assert bad["icd10cm-newborn-age:dx"] == [7]
    assert bad["icd10cm-child-age:dx"] == [] and bad["icd10cm-adult-age:dx"] == []


def test_optional_rules_and_names():
    only_sex = icd10cm_rules("code", sex_column="gender")
    assert [r.name for r in only_sex] == ["icd10cm-female:code", "icd10cm-male:code"]
    assert all(r.source == "icd10cm" for r in only_sex)
    some_age = icd10cm_rules(
        "code",
        age_column="age",
        maternal_age=None,
        child_max_age=None,
        adult_min_age=None,
        newborn_max_age=0,
    )
    assert [r.name for r in some_age] == ["icd10cm-newborn-age:code"]
    assert some_age[0].then.maximum == 0


def test_unknown_group():
    with pytest.raises(ParameterError, match="known groups: female, male"):
        group_prefixes("elderly")


def test_the_shipped_expansion_is_the_code_systems_own() -> None:
    """``icd10cm_groups.json`` equals a fresh expansion through simple_icd_10_cm.

    If this fails after an upgrade of simple_icd_10_cm, rewrite the file with
    ``python -m healthsynth.knowledge._icd10cm`` and review the change.
    """
    import json
    from importlib import resources

    from healthsynth.knowledge._icd10cm import GROUPS_FILE, expand_groups

    shipped = json.loads(
        resources.files("healthsynth.knowledge").joinpath(GROUPS_FILE).read_text("utf-8")
    )
    fresh = expand_groups()
    assert shipped["groups"] == fresh["groups"]
    assert set(shipped["groups"]) == set(CODE_GROUPS)
    for group in CODE_GROUPS:
        assert group_prefixes(group) == tuple(fresh["groups"][group])


def test_sampling_side_lookups_do_not_parse_the_code_system() -> None:
    """group_prefixes reads the shipped file: simple_icd_10_cm is not imported for it."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from healthsynth.knowledge import group_prefixes\n"
        "assert group_prefixes('female')[:2] == ('C51', 'C52')\n"
        "assert 'simple_icd_10_cm' not in sys.modules, 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
