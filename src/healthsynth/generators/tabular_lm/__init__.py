"""``tabular-lm``: a causal language model over patient-record rows, with always-valid sampling."""

from healthsynth.generators.tabular_lm._generator import MIN_ROWS, TabularLM

__all__ = ["MIN_ROWS", "TabularLM"]
