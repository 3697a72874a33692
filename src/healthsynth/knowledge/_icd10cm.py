"""Sex- and age-specific ICD-10-CM codes, derived from the code system's own definitions.

Each group below lists chapters, blocks, categories or subcategories of ICD-10-CM whose title
makes them specific to one sex or an age band. They are expanded through the
``simple_icd_10_cm`` package into code prefixes (chapters and blocks into their 3-character
categories; categories and subcategories are kept as they are), and every listed item is checked
to be a real ICD-10-CM chapter, block or code. The expansion ships as ``icd10cm_groups.json``
(written by ``python -m healthsynth.knowledge._icd10cm``; a test checks it against a fresh
expansion), because the package takes two seconds to parse its XML at import, which sampling a
timeline model with a code map would otherwise pay every time. These are *not* the edit lists
of CMS's Medicare Code Editor (MCE); see ``docs/knowledge.md``.
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from healthsynth.errors import ParameterError
from healthsynth.knowledge._rules import Predicate, Rule, normalize_code

__all__ = ["CODE_GROUPS", "CodeGroup", "group_prefixes", "icd10cm_rules"]


@dataclass(frozen=True)
class CodeGroup:
    """Items of ICD-10-CM (chapter numbers, blocks, categories, subcategories) sharing a reason.

    Parameters
    ----------
    items
        ICD-10-CM items as the code system names them, e.g. ``"N40-N53"``, ``"D06"``, ``"D07.0"``
        or ``"15"`` (a chapter number).
    reason
        Why these items belong to their group, from their titles.
    """

    items: tuple[str, ...]
    reason: str


#: group name -> the items in it. ``female`` / ``male``: codes only one sex can have;
#: ``maternal``: pregnancy, childbirth and the puerperium; ``newborn``: perinatal and liveborn;
#: ``child``: child health examinations; ``adult``: adult health examinations.
CODE_GROUPS: dict[str, tuple[CodeGroup, ...]] = {
    "female": (
        CodeGroup(("C51-C58",), "Malignant neoplasms of female genital organs"),
        CodeGroup(("D06",), "Carcinoma in situ of cervix uteri"),
        CodeGroup(
            ("D07.0", "D07.1", "D07.2", "D07.3"),
            "Carcinoma in situ of endometrium, vulva, vagina, other female genital organs",
        ),
        CodeGroup(("D25", "D26", "D27", "D28"), "Benign neoplasms of uterus, ovary, other female"),
        CodeGroup(("D39",), "Neoplasm of uncertain behavior of female genital organs"),
        CodeGroup(("E28",), "Ovarian dysfunction"),
        CodeGroup(("N70-N77",), "Inflammatory diseases of female pelvic organs"),
        CodeGroup(("N80-N98",), "Noninflammatory disorders of female genital tract"),
        CodeGroup(
            ("N99.2", "N99.3"),
            "Postprocedural adhesions of vagina; prolapse of vaginal vault after hysterectomy",
        ),
        CodeGroup(("15",), "Chapter 15: Pregnancy, childbirth and the puerperium (O00-O9A)"),
        CodeGroup(("Q50", "Q51", "Q52"), "Congenital malformations of female genital organs"),
        CodeGroup(("R87",), "Abnormal findings in specimens from female genital organs"),
        CodeGroup(("Z01.4",), "Encounter for gynecological examination"),
        CodeGroup(("Z12.4",), "Encounter for screening for malignant neoplasm of cervix"),
        CodeGroup(
            ("Z33", "Z34", "Z36", "Z3A", "Z37", "Z39"),
            "Pregnant state, supervision of pregnancy, antenatal screening of mother, weeks of "
            "gestation, outcome of delivery, maternal postpartum care",
        ),
        CodeGroup(
            ("Z85.40", "Z85.41", "Z85.42", "Z85.43", "Z85.44", "Z85.4A"),
            "Personal history of malignant neoplasm of female genital organs",
        ),
        CodeGroup(("Z90.71", "Z90.72"), "Acquired absence of cervix and uterus; of ovaries"),
    ),
    "male": (
        CodeGroup(("C60-C63",), "Malignant neoplasms of male genital organs"),
        CodeGroup(
            ("D07.4", "D07.5", "D07.6"),
            "Carcinoma in situ of penis, prostate, other male genital organs",
        ),
        CodeGroup(("D29",), "Benign neoplasm of male genital organs"),
        CodeGroup(("D40",), "Neoplasm of uncertain behavior of male genital organs"),
        CodeGroup(("E29",), "Testicular dysfunction"),
        CodeGroup(("N40-N53",), "Diseases of male genital organs"),
        CodeGroup(("Q53", "Q54", "Q55"), "Undescended testicle, hypospadias, other male genital"),
        CodeGroup(("R86",), "Abnormal findings in specimens from male genital organs"),
        CodeGroup(("Z12.5",), "Encounter for screening for malignant neoplasm of prostate"),
        CodeGroup(
            ("Z85.45", "Z85.46", "Z85.47", "Z85.48", "Z85.49"),
            "Personal history of malignant neoplasm of male genital organs",
        ),
    ),
    "maternal": (
        CodeGroup(("15",), "Chapter 15: Pregnancy, childbirth and the puerperium (O00-O9A)"),
        CodeGroup(
            ("Z33", "Z34", "Z36", "Z3A", "Z37", "Z39"),
            "Pregnant state, supervision of pregnancy, antenatal screening of mother, weeks of "
            "gestation, outcome of delivery, maternal postpartum care",
        ),
    ),
    "newborn": (
        CodeGroup(("16",), "Chapter 16: Certain conditions originating in the perinatal period"),
        CodeGroup(("Z00.11",), "Newborn health examination"),
        CodeGroup(("Z05",), "Observation and evaluation of newborn"),
        CodeGroup(("Z38",), "Liveborn infants according to place of birth and type of delivery"),
    ),
    "child": (
        CodeGroup(("Z00.12",), "Encounter for routine child health examination"),
        CodeGroup(
            ("Z00.2", "Z00.7"),
            "Examination for period of rapid / delayed growth in childhood",
        ),
    ),
    "adult": (CodeGroup(("Z00.0",), "Encounter for general adult medical examination"),),
}

#: default ages (years): maternal codes, newborn codes, child examinations, adult examinations
DEFAULT_MATERNAL_AGE = (12.0, 55.0)
DEFAULT_NEWBORN_MAX_AGE = 1.0
DEFAULT_CHILD_MAX_AGE = 17.0
DEFAULT_ADULT_MIN_AGE = 15.0


def _cm() -> Any:
    # the package reads its data at import with a deprecated importlib API; keep that quiet
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10_cm as cm

    return cm


def _expand(item: str) -> list[str]:
    """Normalized prefixes for one ICD-10-CM item (chapters and blocks -> their categories)."""
    cm = _cm()
    if not cm.is_valid_item(item):
        raise ParameterError(f"'{item}' is not an ICD-10-CM chapter, block or code")
    if cm.is_chapter_or_block(item):
        cats = [c for c in cm.get_descendants(item) if cm.is_category(c)]
        return [normalize_code(c) for c in cats]
    return [normalize_code(item)]


@functools.cache
def group_prefixes(group: str) -> tuple[str, ...]:
    """The normalized code prefixes of one group of :data:`CODE_GROUPS`.

    Parameters
    ----------
    group
        One of ``female``, ``male``, ``maternal``, ``newborn``, ``child``, ``adult``.

    Returns
    -------
    tuple of str
        Prefixes without dots, upper-case, sorted, e.g. ``("C51", "C52", ...)``.
    """
    if group not in CODE_GROUPS:
        raise ParameterError(
            f"ICD-10-CM group '{group}' is not known; known groups: {', '.join(CODE_GROUPS)}"
        )
    return tuple(_shipped_groups()[group])


#: The shipped expansion of :data:`CODE_GROUPS` (package data next to this module).
GROUPS_FILE = "icd10cm_groups.json"


@functools.cache
def _shipped_groups() -> dict[str, list[str]]:
    text = resources.files("healthsynth.knowledge").joinpath(GROUPS_FILE).read_text("utf-8")
    return json.loads(text)["groups"]


def expand_groups() -> dict[str, Any]:
    """:data:`CODE_GROUPS` expanded through ``simple_icd_10_cm``: what ``GROUPS_FILE`` holds."""
    from importlib.metadata import version

    groups = {}
    for group, parts in CODE_GROUPS.items():
        out: set[str] = set()
        for g in parts:
            for item in g.items:
                out.update(_expand(item))
        groups[group] = sorted(out)
    return {"source": f"simple_icd_10_cm {version('simple_icd_10_cm')}", "groups": groups}


def _items(group: str, n: int = 3) -> str:
    """The first ``n`` items of a group, chapters named as such, for rule descriptions."""
    items = [i for g in CODE_GROUPS[group] for i in g.items]
    shown = [f"chapter {i}" if i.isdigit() else i for i in items[:n]]
    return ", ".join(shown) + (", …" if len(items) > n else "")


def _then_text(column: str, values: Sequence[Any]) -> str:
    """Describe the sex condition of a sex rule."""
    return Predicate(column, values=tuple(values)).describe()


def _age_pair(value: Sequence[float] | None, what: str) -> tuple[float, float] | None:
    if value is None:
        return None
    pair = tuple(value)
    if len(pair) != 2:
        raise ParameterError(f"{what} must be two ages [min, max]; got {list(pair)}")
    return float(pair[0]), float(pair[1])


def icd10cm_rules(
    code_column: str,
    *,
    sex_column: str | None = None,
    female: Sequence[Any] = ("F", "female"),
    male: Sequence[Any] = ("M", "male"),
    age_column: str | None = None,
    maternal_age: Sequence[float] | None = DEFAULT_MATERNAL_AGE,
    newborn_max_age: float | None = DEFAULT_NEWBORN_MAX_AGE,
    child_max_age: float | None = DEFAULT_CHILD_MAX_AGE,
    adult_min_age: float | None = DEFAULT_ADULT_MIN_AGE,
) -> list[Rule]:
    """Rules tying ICD-10-CM codes in ``code_column`` to the patient's sex and age.

    Parameters
    ----------
    code_column
        Column holding ICD-10-CM codes, with or without the dot (``"N40.1"``, ``"N401"``).
    sex_column
        Column holding the patient's sex; None skips the sex rules.
    female, male
        Values of ``sex_column`` that mean female / male (matched case-blind).
    age_column
        Column holding the age in years; None skips the age rules.
    maternal_age
        ``[min, max]`` age for pregnancy, childbirth and puerperium codes; None skips the rule.
    newborn_max_age
        Highest age for perinatal and liveborn codes; None skips the rule.
    child_max_age
        Highest age for child health examination codes; None skips the rule.
    adult_min_age
        Lowest age for adult health examination codes; None skips the rule.

    Returns
    -------
    list of Rule
        With names ``icd10cm-<group>:<code_column>`` and source ``"icd10cm"``.
    """
    rules: list[Rule] = []
    name = f":{code_column}"

    def when(group: str) -> tuple[Predicate, ...]:
        return (Predicate(code_column, prefixes=group_prefixes(group)),)

    if sex_column is not None:
        for group, values in (("female", female), ("male", male)):
            vals = (values,) if isinstance(values, str) else tuple(values)
            rules.append(
                Rule(
                    name=f"icd10cm-{group}" + name,
                    when=when(group),
                    then=Predicate(sex_column, values=vals),
                    description=(
                        f"codes in '{code_column}' that ICD-10-CM defines as {group}-only "
                        f"({_items(group)}) need {_then_text(sex_column, vals)}"
                    ),
                    source="icd10cm",
                )
            )
    if age_column is not None:
        pair = _age_pair(maternal_age, "maternal_age")
        bands: list[tuple[str, float | None, float | None, str]] = []
        if pair is not None:
            bands.append(("maternal", pair[0], pair[1], "pregnancy-related"))
        if newborn_max_age is not None:
            bands.append(("newborn", None, float(newborn_max_age), "perinatal and newborn"))
        if child_max_age is not None:
            bands.append(("child", None, float(child_max_age), "child examination"))
        if adult_min_age is not None:
            bands.append(("adult", float(adult_min_age), None, "adult examination"))
        for group, lo, hi, label in bands:
            then = Predicate(age_column, minimum=lo, maximum=hi)
            rules.append(
                Rule(
                    name=f"icd10cm-{group}-age" + name,
                    when=when(group),
                    then=then,
                    description=(
                        f"{label} ICD-10-CM codes in '{code_column}' ({_items(group)}) need "
                        f"{then.describe()}"
                    ),
                    source="icd10cm",
                )
            )
    return rules


if __name__ == "__main__":  # rewrite the shipped expansion
    from pathlib import Path

    target = Path(__file__).with_name(GROUPS_FILE)
    target.write_text(json.dumps(expand_groups(), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {target}")
