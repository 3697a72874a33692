"""``tabular-lm``: a causal language model over patient-record rows, with always-valid sampling."""

from healthsynth.generators.tabular_lm._generator import MIN_ROWS, TabularLM
from healthsynth.generators.tabular_lm._prior import PRIOR_TABLES, build_prior, prior_info

__all__ = ["MIN_ROWS", "PRIOR_TABLES", "TabularLM", "build_prior", "prior_info"]
