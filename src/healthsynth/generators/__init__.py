"""Synthetic-data generators behind one contract, found by name in a registry."""

from healthsynth.generators._base import Generator, HealthsynthWarning
from healthsynth.generators._conditions import parse_condition_strings
from healthsynth.generators._registry import GeneratorRegistry, registry, timeline_registry

__all__ = [
    "Generator",
    "GeneratorRegistry",
    "HealthsynthWarning",
    "load_generator",
    "parse_condition_strings",
    "registry",
    "timeline_registry",
]


def load_generator(path, *, trust_pickle=False):  # noqa: ANN001, ANN201 - thin dispatcher
    """Load any saved generator folder (its ``generator.json`` names the class).

    A folder of a generator that saves a pickle (``ctgan``, ``tvae``, ``gaussian-copula``) is
    refused unless ``trust_pickle=True``: unpickling runs whatever code the file carries, so
    pass it only for folders you made yourself or whose author you trust.
    """
    from healthsynth.generators._folder import load_any

    return load_any(path, trust_pickle=trust_pickle)
