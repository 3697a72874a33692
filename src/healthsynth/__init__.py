"""healthsynth: synthetic health data with language models, measured on one portfolio.

Importing this package is cheap: nothing heavy (torch, transformers) loads until used.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "Schema",
    "__version__",
    "evaluate",
    "infer_schema",
    "load_generator",
    "read_table",
    "registry",
]


def __getattr__(name: str) -> Any:
    if name in ("Schema", "infer_schema", "read_table"):
        from healthsynth import data

        return getattr(data, name)
    if name in ("registry", "load_generator"):
        from healthsynth import generators

        return getattr(generators, name)
    if name == "evaluate":
        from healthsynth.evaluate import evaluate

        return evaluate
    raise AttributeError(f"module 'healthsynth' has no attribute {name!r}")
