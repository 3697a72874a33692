"""Curation moved to :mod:`healthsynth.generators._curate` (any generator's rows); re-exported."""

from healthsynth.generators._curate import (
    DEFAULT_CONFIDENCE_THRESHOLD,
    DEFAULT_UNCERTAINTY_PERCENTILE,
    GROUPS,
    MIN_ROWS_PER_CLASS,
    Curation,
    curate,
)

__all__ = [
    "DEFAULT_CONFIDENCE_THRESHOLD",
    "DEFAULT_UNCERTAINTY_PERCENTILE",
    "GROUPS",
    "MIN_ROWS_PER_CLASS",
    "Curation",
    "curate",
]
