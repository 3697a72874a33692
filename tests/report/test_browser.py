"""Open a real report in a real browser (Debian's chromium, driven by playwright).

Skips when /usr/bin/chromium is missing, unless HEALTHSYNTH_REQUIRE_BROWSER=1 (as in CI).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.report.conftest import XSS, plot_records

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _need_browser() -> None:
    required = os.environ.get("HEALTHSYNTH_REQUIRE_BROWSER") == "1"
    why = None
    if not CHROMIUM.exists():
        why = f"{CHROMIUM} is missing; run scripts/install-browser.sh"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            why = "the playwright package is missing; install the 'test' extra"
    if why is None:
        return
    if required:
        pytest.fail(f"HEALTHSYNTH_REQUIRE_BROWSER=1 but {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def real_result(pima_model, pima) -> dict[str, Any]:
    """A real evaluation: the tiny tabular LM's Pima rows against Pima.tr, Pima.te as holdout.

    ``bmi`` is renamed to a script tag everywhere, and records carrying every plotted detail
    key are added so that all plots appear whatever the metrics return today.
    """
    from threadpoolctl import threadpool_limits

    import healthsynth
    from healthsynth.data import infer_schema
    from healthsynth.evaluate import METRICS
    from tests.helpers import real

    rename = {"bmi": XSS}
    train = pima.rename(columns=rename)
    synthetic = pima_model.sample(200, seed=0).rename(columns=rename)
    holdout = real("MASS/Pima.te").rename(columns=rename)
    schema = infer_schema(train, target="type", sensitive=[XSS])
    # every metric but importance_agreement, whose permutation importances take minutes on
    # two busy cores; the report is agnostic to which metrics ran
    metrics = [m for m in METRICS if m != "importance_agreement"]
    # torch's OpenMP workers, still spinning after sampling, starve scikit-learn's gradient
    # boosting on a small machine; one thread each keeps the metrics fast
    with threadpool_limits(1):
        result = healthsynth.evaluate(
            real=train, synthetic=synthetic, holdout=holdout, schema=schema, metrics=metrics
        )
    result.setdefault(
        "meta",
        {
            "real": {"rows": len(train), "columns": train.shape[1], "source": "MASS/Pima.tr"},
            "synthetic": {
                "rows": len(synthetic),
                "columns": synthetic.shape[1],
                "source": "tabular_lm (tiny, seed 0)",
            },
            "holdout": {
                "rows": len(holdout),
                "columns": holdout.shape[1],
                "source": "MASS/Pima.te",
            },
            "target": "type",
            "sensitive": [XSS],
            "versions": {"healthsynth": healthsynth.__version__},
        },
    )
    result["records"] = list(result["records"]) + plot_records(XSS)
    return result


def test_report_in_browser(real_result, tmp_path):
    _need_browser()
    from playwright.sync_api import sync_playwright

    from healthsynth.report import write_report

    path = write_report(real_result, tmp_path)
    errors: list[str] = []
    dialogs: list[str] = []
    outside: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    def dialog(d: Any) -> None:
        dialogs.append(d.message)
        d.dismiss()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("dialog", dialog)
            page.route("**/*", route)
            page.goto(path.as_uri(), wait_until="load")

            expected = int(page.locator("main").get_attribute("data-plot-count") or "-1")
            boxes = [svg.bounding_box() for svg in page.locator("figure.plot > svg").all()]
            text = page.locator("body").inner_text()
            scripts = page.locator("script").count()
            xss_cell = page.locator("td", has_text=XSS).first
            xss_visible = xss_cell.is_visible()

            ARTIFACTS.mkdir(exist_ok=True)
            shot = page.screenshot(full_page=True)
        finally:
            browser.close()
    (ARTIFACTS / "report.png").write_bytes(shot)
    (tmp_path / "report.png").write_bytes(shot)
    shutil.copyfile(path, ARTIFACTS / "report.html")

    assert errors == []
    assert dialogs == []  # the column named <script>alert(1)</script> did not run
    assert outside == []  # nothing left file://
    assert scripts == 0
    assert expected >= 5  # distributions, heatmap, DCR, utility and fairness at least
    assert len(boxes) == expected
    assert all(b is not None and b["width"] > 0 and b["height"] > 0 for b in boxes)
    assert XSS in text and xss_visible
    for name in {r["name"] for r in real_result["records"]}:
        assert name in text
    for r in real_result["records"]:
        if r.get("message"):
            assert " ".join(r["message"].split())[:40] in " ".join(text.split())
