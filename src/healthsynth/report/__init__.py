"""A self-contained HTML report (and a JSON copy) of an evaluation result.

The report only formats the plain data that :func:`healthsynth.evaluate` returns; it never
trains a model or reads a data file. Plots are inline SVG and styles are inline CSS, so the
page opens offline and prints well.
"""

from healthsynth.report._console import scorecard_table
from healthsynth.report._render import render_html, scores_json, write_report
from healthsynth.report._scorecard import scorecard, verdict

__all__ = [
    "render_html",
    "scorecard",
    "scorecard_table",
    "scores_json",
    "verdict",
    "write_report",
]
