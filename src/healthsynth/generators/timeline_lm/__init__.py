"""The timeline language model: longitudinal patients (static attributes, events, labs)."""

from healthsynth.generators.timeline_lm._generator import TimelineLM

__all__ = ["TimelineLM"]
