from __future__ import annotations

import pandas as pd
import pytest

from healthsynth.evaluate.timeline import violations
from healthsynth.knowledge import CodeEntry, CodeMap, load_code_map
from tests.evaluate.timeline._data import nafld_three_way, scaled_labs, with_tables


def _kinds(recs):
    return {r.subgroup: r for r in recs if r.subgroup is not None}


def _afib_as_delivery() -> CodeMap:
    """The NAFLD map with afib recoded as O80 (delivery): female-only, ages 12-55."""
    base = load_code_map("nafld")
    entries = [e for k, e in base.entries.items() if k != ("events", "afib")]
    entries.append(CodeEntry("events", "afib", "ICD10CM", "O80", "delivery", None, None, None, ""))
    return CodeMap(entries, name="afib-as-O80")


def test_real_holdout_scores_close_to_the_reference_and_shows_real_flaws():
    train, hold, fresh = nafld_three_way()
    recs = violations.compute(real=train, synthetic=fresh, holdout=hold, code_map="nafld")
    overall, kinds = recs[0], _kinds(recs)
    assert overall.value == pytest.approx(overall.reference, abs=0.03)
    assert overall.interval[0] <= overall.value <= overall.interval[1]
    assert set(kinds) == {f"kind:{k}" for k in violations.KINDS}
    # the real cohort has implausible values (mostly cholesterol under 40 mg/dL)
    assert kinds["kind:implausible_value"].reference > 0.01
    assert kinds["kind:wrong_sex"].value == 0 and kinds["kind:unknown_item"].value == 0
    assert overall.details["not_checked"] == {}
    assert overall.details["unmapped_items"] == ["labs/fib4"]


def test_a_female_only_code_on_men_is_counted():
    train, hold, fresh = nafld_three_way()
    recs = violations.compute(real=train, synthetic=fresh, code_map=_afib_as_delivery())
    kinds = _kinds(recs)
    ev = fresh.tables["events"].merge(fresh.patient_table, on="id")
    afib = ev[ev["event"] == "afib"]
    assert len(afib) > 10
    men = int((afib["sex"] == "male").sum())
    assert kinds["kind:wrong_sex"].details["count"] == men > 0
    age_at = afib["age"] + afib["days"] / 365.25
    assert kinds["kind:outside_age_band"].details["count"] == int(
        ((age_at < 12) | (age_at > 55)).sum()
    )
    assert kinds["kind:wrong_sex"].details["items"] == {"events/afib": men}


def test_events_after_death_and_unknown_items_are_counted():
    train, hold, fresh = nafld_three_way()
    base = _kinds(violations.compute(real=train, synthetic=fresh))
    p = fresh.patient_table
    dead = p[p["status"] == 1]
    late = pd.DataFrame({"id": dead["id"], "days": dead["futime"] + 10, "event": "gout"})
    broken = with_tables(fresh, events=pd.concat([fresh.tables["events"], late]))
    kinds = _kinds(violations.compute(real=train, synthetic=broken))
    assert len(dead) > 5
    assert kinds["kind:after_death"].details["count"] == (
        base["kind:after_death"].details["count"] + len(dead)
    )
    assert kinds["kind:after_end"].details["count"] >= kinds["kind:after_death"].details["count"]
    assert kinds["kind:unknown_item"].details["count"] == len(dead)


def test_scaled_labs_raise_implausible_values():
    train, hold, fresh = nafld_three_way()
    recs = violations.compute(
        real=train, synthetic=scaled_labs(fresh), holdout=hold, code_map="nafld"
    )
    kind = _kinds(recs)["kind:implausible_value"]
    assert kind.value > kind.reference + 0.03
    assert recs[0].value > recs[0].reference + 0.03


def test_without_a_code_map_the_code_checks_are_skipped_and_said_so():
    train, _, fresh = nafld_three_way()
    recs = violations.compute(real=train, synthetic=fresh)
    skipped = recs[0].details["not_checked"]
    assert set(skipped) == {"wrong_sex", "outside_age_band", "implausible_value"}
    assert "kind:wrong_sex" not in _kinds(recs)
    assert recs[0].details["unmapped_items"] is None


def test_events_before_birth_are_counted_once():
    train, _, fresh = nafld_three_way()
    p = fresh.patient_table.iloc[:5]
    early = pd.DataFrame({"id": p["id"], "days": -(p["age"] + 1) * 366, "event": "htn"})
    broken = with_tables(fresh, events=pd.concat([fresh.tables["events"], early]))
    recs = violations.compute(real=train, synthetic=broken, code_map="nafld")
    kinds = _kinds(recs)
    assert kinds["kind:before_birth"].details["count"] == 5
    # htn has no age band, so the same events are not counted again as outside one
    assert kinds["kind:outside_age_band"].details["count"] == 0
