from __future__ import annotations

import pytest

from healthsynth.evaluate.timeline import cost
from tests.evaluate.timeline._data import nafld_three_way


def test_cost_figures_and_patients_per_second():
    train, _, fresh = nafld_three_way()
    assert cost.compute(real=train, synthetic=fresh)[0].status == "not_applicable"
    recs = {
        r.name: r
        for r in cost.compute(
            real=train,
            synthetic=fresh,
            training={"fit_seconds": 30.0, "peak_rss_mb": 512, "generator": "timeline-lm"},
            sampling={"seconds": 5.0},
        )
    }
    assert recs["fit_wall_seconds"].value == 30.0
    assert recs["fit_peak_memory_mb"].details["unit"] == "MiB"
    assert recs["sample_patients_per_second"].value == pytest.approx(750 / 5.0)
    assert recs["sample_patients_per_second"].direction == "higher"
    given = cost.compute(real=train, synthetic=fresh, sampling={"patients_per_second": 12})
    assert given[-1].value == 12.0
    empty = cost.compute(real=train, synthetic=fresh, sampling={"note": "nothing"})
    assert empty[0].status == "not_applicable"
