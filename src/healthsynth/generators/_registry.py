"""Generators by name. Listing names imports nothing heavy; a failed load raises with its cause."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from healthsynth.errors import ParameterError

__all__ = ["GeneratorRegistry", "registry", "timeline_registry"]


class GeneratorRegistry:
    """Maps generator names to ``module:Class`` paths, imported on first use."""

    def __init__(self, group: str = "healthsynth.generators") -> None:
        self._paths: dict[str, str] = {}
        self._group = group
        self._plugins_loaded = False

    def register(self, name: str, path: str) -> None:
        """Register ``path`` (``package.module:Class``) under ``name``."""
        self._paths[name] = path

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=self._group):
            self._paths.setdefault(ep.name, ep.value)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        self._load_plugins()
        return sorted(self._paths)

    def get(self, name: str) -> type[Any]:
        """The generator class registered under ``name``."""
        self._load_plugins()
        if name not in self._paths:
            raise ParameterError(
                f"generator '{name}' is not known; known generators: {', '.join(self.names())}"
            )
        module, _, attr = self._paths[name].partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise ImportError(
                f"generator '{name}' ({self._paths[name]}) failed to load: {e}"
            ) from e

    def create(self, name: str, **params: Any) -> Any:
        """Instantiate the generator ``name`` with keyword settings."""
        return self.get(name)(**params)


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

#: Generators of multi-table patient timelines (they fit a :class:`healthsynth.data.Dataset`).
timeline_registry = GeneratorRegistry(group="healthsynth.timeline_generators")
timeline_registry.register("timeline-lm", "healthsynth.generators.timeline_lm:TimelineLM")
