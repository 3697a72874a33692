"""Generators by name. Listing names imports nothing heavy; a failed load raises with its cause.

One registry holds generators of both data kinds (``"table"`` and ``"timelines"``, see
:class:`healthsynth.generators.Generator`); the kind is recorded at registration, so listing
by kind imports nothing. Plugins register through the entry-point groups
``healthsynth.generators`` (tables) and ``healthsynth.timeline_generators`` (timelines).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from healthsynth.errors import ParameterError

__all__ = ["GeneratorRegistry", "registry", "timeline_registry"]

_GROUPS = {"table": "healthsynth.generators", "timelines": "healthsynth.timeline_generators"}


class GeneratorRegistry:
    """Maps generator names to ``module:Class`` paths, imported on first use.

    Parameters
    ----------
    kind
        ``None`` for the registry of every kind; a data kind for a view of one kind, which
        shares the registrations of ``parent``.
    """

    def __init__(self, kind: str | None = None, parent: GeneratorRegistry | None = None) -> None:
        self._paths: dict[str, str] = {}
        self._kinds: dict[str, str] = {}
        self._kind = kind
        self._parent = parent
        self._plugins_loaded = False

    def _root(self) -> GeneratorRegistry:
        return self._parent if self._parent is not None else self

    def register(self, name: str, path: str, *, kind: str = "table") -> None:
        """Register ``path`` (``package.module:Class``) under ``name`` for data ``kind``."""
        if kind not in _GROUPS:
            raise ParameterError(f"data kind '{kind}' is not one of {', '.join(_GROUPS)}")
        root = self._root()
        root._paths[name] = path
        root._kinds[name] = kind

    def _load_plugins(self) -> None:
        root = self._root()
        if root._plugins_loaded:
            return
        root._plugins_loaded = True
        for kind, group in _GROUPS.items():
            for ep in entry_points(group=group):
                if ep.name not in root._paths:
                    root._paths[ep.name] = ep.value
                    root._kinds[ep.name] = kind

    def names(self, kind: str | None = None) -> list[str]:
        """Registered names, sorted (of one data ``kind``, or of this view's kind)."""
        self._load_plugins()
        root, kind = self._root(), kind or self._kind
        return sorted(n for n in root._paths if kind is None or root._kinds[n] == kind)

    def kind(self, name: str) -> str:
        """The data kind of generator ``name`` (nothing is imported)."""
        self._check(name)
        return self._root()._kinds[name]

    def _check(self, name: str) -> None:
        if name not in self.names():
            raise ParameterError(
                f"generator '{name}' is not known; known generators: {', '.join(self.names())}"
            )

    def get(self, name: str) -> type[Any]:
        """The generator class registered under ``name``."""
        self._check(name)
        path = self._root()._paths[name]
        module, _, attr = path.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise ImportError(f"generator '{name}' ({path}) failed to load: {e}") from e

    def create(self, name: str, **params: Any) -> Any:
        """Instantiate the generator ``name`` with keyword settings."""
        return self.get(name)(**params)


#: Every generator, of both data kinds.
registry = GeneratorRegistry()
registry.register("tabular-lm", "healthsynth.generators.tabular_lm:TabularLM")
registry.register("marginals", "healthsynth.generators.marginals:IndependentMarginals")
registry.register("gaussian-copula", "healthsynth.generators.gaussian_copula:GaussianCopula")
registry.register("ctgan", "healthsynth.generators.ctgan_tvae:CTGAN")
registry.register("tvae", "healthsynth.generators.ctgan_tvae:TVAE")
registry.register("bayesian-network", "healthsynth.generators.bayesian_network:BayesianNetwork")
registry.register("smote", "healthsynth.generators.oversampling:SMOTE")
registry.register("random-oversampling", "healthsynth.generators.oversampling:RandomOversampling")
registry.register("prompted-llm", "healthsynth.generators.prompted_llm:PromptedLLM")
registry.register("timeline-lm", "healthsynth.generators.timeline_lm:TimelineLM", kind="timelines")

#: The generators of patient timelines only (a view of :data:`registry`).
timeline_registry = GeneratorRegistry(kind="timelines", parent=registry)
