from __future__ import annotations

from healthsynth.evaluate.timeline import dcr
from tests.evaluate.timeline._data import nafld_three_way


def test_copied_patients_sit_at_distance_zero():
    train, hold, _ = nafld_three_way()
    ids = train.patient_table["id"].to_numpy()[:300]
    rec = dcr.compute(real=train, synthetic=train.subset(ids), holdout=hold)[0]
    assert rec.value == 0.0 and rec.reference == 1.0
    assert rec.details["exact_copy_share"] == 1.0
    assert rec.details["closer_than_holdout_p5"] == 1.0


def test_fresh_patients_score_about_one():
    train, hold, fresh = nafld_three_way()
    rec = dcr.compute(real=train, synthetic=fresh, holdout=hold)[0]
    assert 0.85 < rec.value < 1.15
    assert rec.interval[0] < 1.0 < rec.interval[1]
    assert rec.details["closer_than_holdout_p5"] < 0.1
    assert rec.details["exact_copy_share"] == 0.0
    # static columns + a count per item + a mean per lab item
    assert rec.details["n_features"] == 7 + 16 + 6


def test_without_holdout_the_median_is_kept_in_details():
    train, _, fresh = nafld_three_way()
    rec = dcr.compute(real=train, synthetic=fresh)[0]
    assert rec.status == "not_applicable"
    assert rec.details["median_dcr_synthetic"] > 0
