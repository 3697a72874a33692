"""Metrics by name, for tables and for timelines: one registry object.

Listing names imports nothing: the registry holds module paths and each metric's data kind.
A metric module is imported the first time it is used, and checked then (its ``INFO`` and a
keyword-only ``compute``); a module that fails to load raises with its cause. Other packages
add metrics through the entry-point groups ``healthsynth.metrics`` (tables) and
``healthsynth.timeline_metrics`` (timelines), each entry ``name = package.module``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

from healthsynth.errors import ParameterError
from healthsynth.evaluate._base import KINDS, Kind, MetricInfo, MetricRecord

__all__ = ["MetricRegistry", "registry"]

#: entry-point group of each data kind
GROUPS: dict[str, str] = {
    "table": "healthsynth.metrics",
    "timelines": "healthsynth.timeline_metrics",
}

#: how the other kind's metrics are run, for the message when a name is given to the wrong one
_RUNNERS = {"table": "healthsynth.evaluate", "timelines": "evaluate_timelines"}
_NOUN = {"table": "metric", "timelines": "timeline metric"}
_WHAT = {"table": "table metric", "timelines": "timeline metric"}


@dataclass(frozen=True)
class _Entry:
    name: str
    module: str
    kind: Kind


class MetricRegistry:
    """Maps metric names to the modules that implement them, imported on first use.

    Parameters
    ----------
    groups
        Entry-point group of each data kind, read once, the first time names are needed.
    """

    def __init__(self, groups: Mapping[str, str] | None = None) -> None:
        self._entries: dict[str, _Entry] = {}
        self._modules: dict[str, ModuleType] = {}
        self._groups = dict(GROUPS if groups is None else groups)
        self._plugins_loaded = False

    def register(self, name: str, module: str, *, kind: Kind) -> None:
        """Register the metric ``name``, implemented by ``module``, for data of ``kind``."""
        if kind not in KINDS:
            raise ParameterError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        old = self._entries.get(name)
        if old is not None and old.module != module:
            raise ParameterError(
                f"metric '{name}' is already registered ({old.module}); choose another name"
            )
        self._entries[name] = _Entry(name, module, kind)

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for kind, group in self._groups.items():
            for ep in entry_points(group=group):
                if ep.name not in self._entries:
                    self._entries[ep.name] = _Entry(ep.name, ep.value, kind)  # type: ignore[arg-type]

    # -- listing: imports nothing ------------------------------------------------------------

    def names(self, kind: Kind | None = None) -> list[str]:
        """Registered names of ``kind`` (all kinds by default), in registration order.

        The order is the order :func:`healthsynth.evaluate` runs and reports them in.
        """
        self._load_plugins()
        return [e.name for e in self._entries.values() if kind is None or e.kind == kind]

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._entries

    def kind(self, name: str) -> Kind:
        """The data kind metric ``name`` scores."""
        return self._entry(name).kind

    def module_path(self, name: str) -> str:
        """The dotted path of the module implementing ``name``."""
        return self._entry(name).module

    def mapping(self, kind: Kind) -> Mapping[str, str]:
        """A live, read-only view ``name -> module path`` of the metrics of ``kind``."""
        return _View(self, kind)

    def resolve(self, names: str | Iterable[str] | None, *, kind: Kind) -> list[str]:
        """The metrics to run: ``names`` checked against ``kind`` (None: all of ``kind``).

        Raises
        ------
        ParameterError
            For a name that is not registered (listing the valid ones), or a metric of the other
            data kind (saying which function runs it).
        """
        if names is None:
            return self.names(kind)
        names = [names] if isinstance(names, str) else list(names)
        valid = sorted(self.names(kind))
        for n in names:
            if not isinstance(n, str) or n not in self:
                raise ParameterError(
                    f"{_NOUN[kind]} '{n}' is not known; known {_NOUN[kind]}s: {', '.join(valid)}"
                )
            other = self.kind(n)
            if other != kind:
                raise ParameterError(
                    f"'{n}' is a {_WHAT[other]}: run it with {_RUNNERS[other]}; known "
                    f"{_NOUN[kind]}s: {', '.join(valid)}"
                )
        return names

    # -- loading: imports the metric's module ------------------------------------------------

    def load(self, name: str) -> ModuleType:
        """The module of metric ``name``, imported and checked on first use.

        Raises
        ------
        ParameterError
            For an unknown name.
        ImportError
            When the module cannot be imported, or does not follow the metric contract (no
            ``INFO`` for this name and kind, or a ``compute`` with positional parameters).
        """
        entry = self._entry(name)
        if name in self._modules:
            return self._modules[name]
        try:
            module = importlib.import_module(entry.module)
        except ImportError as e:
            raise ImportError(f"metric '{name}' ({entry.module}) failed to load: {e}") from e
        problem = _contract_problem(module, entry)
        if problem is not None:
            raise ImportError(f"metric '{name}' ({entry.module}) {problem}")
        self._modules[name] = module
        return module

    def info(self, name: str) -> MetricInfo:
        """The ``INFO`` metric ``name`` declares."""
        return self.load(name).INFO  # type: ignore[no-any-return]

    def compute(self, name: str) -> Callable[..., list[MetricRecord]]:
        """The ``compute`` function of metric ``name``."""
        return self.load(name).compute  # type: ignore[no-any-return]

    def describe(self, record_name: str, kind: Kind | None = None) -> dict[str, Any] | None:
        """Glossary data for a record name (see :meth:`MetricInfo.describe`), or None.

        The metric of that name is looked at first, then every registered metric of ``kind``
        in order, imported as needed; the first that declares the record name answers.
        """
        order = self.names(kind)
        if record_name in order:
            order.remove(record_name)
            order.insert(0, record_name)
        for n in order:
            found = self.info(n).describe(record_name)
            if found is not None:
                return found
        return None

    def _entry(self, name: str) -> _Entry:
        self._load_plugins()
        if name not in self._entries:
            raise ParameterError(
                f"metric '{name}' is not known; known metrics: {', '.join(sorted(self._entries))}"
            )
        return self._entries[name]


class _View(Mapping[str, str]):
    """``name -> module path`` of one kind's metrics, always current."""

    def __init__(self, reg: MetricRegistry, kind: Kind) -> None:
        self._reg = reg
        self._kind = kind

    def __getitem__(self, name: str) -> str:
        if name not in self._reg or self._reg.kind(name) != self._kind:
            raise KeyError(name)
        return self._reg.module_path(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._reg.names(self._kind))

    def __len__(self) -> int:
        return len(self._reg.names(self._kind))

    def __repr__(self) -> str:
        return f"<{self._kind} metrics: {', '.join(self)}>"


def _contract_problem(module: ModuleType, entry: _Entry) -> str | None:
    """What is wrong with a metric module, or None when it follows the contract."""
    info = getattr(module, "INFO", None)
    if not isinstance(info, MetricInfo):
        return "has no INFO (a healthsynth.evaluate.MetricInfo)"
    if info.name != entry.name or info.kind != entry.kind:
        return (
            f"declares INFO name '{info.name}' and kind '{info.kind}', but is registered as "
            f"'{entry.name}' for {entry.kind} data"
        )
    compute = getattr(module, "compute", None)
    if not callable(compute):
        return "has no compute function"
    positional = [
        p.name
        for p in inspect.signature(compute).parameters.values()
        if p.kind not in (p.KEYWORD_ONLY, p.VAR_KEYWORD)
    ]
    if positional:
        return (
            f"compute takes positional parameter(s) {', '.join(positional)}; make them keyword-only"
        )
    return None


_PKG = "healthsynth.evaluate"

#: the one registry of metrics; ``names(kind)`` is the default portfolio of that kind
registry = MetricRegistry()
for _name, _module in (
    # fidelity
    ("column_distance", "fidelity.column_distance"),
    ("dependence_difference", "fidelity.dependence"),
    ("detection_auc", "fidelity.detection"),
    ("precision_recall", "fidelity.precision_recall"),
    ("missingness_patterns", "fidelity.missingness"),
    # utility
    ("tstr", "utility.tstr"),
    ("augmentation_lift", "utility.augmentation"),
    ("importance_agreement", "utility.importance"),
    # privacy
    ("dcr", "privacy.dcr"),
    ("membership_inference", "privacy.membership"),
    ("attribute_inference", "privacy.attribute"),
    ("anonymeter", "privacy.anonymeter_risks"),
    ("regurgitation", "privacy.regurgitation"),
    # diversity
    ("coverage", "diversity.coverage"),
    ("duplicates", "diversity.duplicates"),
    ("rare_categories", "diversity.rare_categories"),
    # fairness
    ("subgroup_shares", "fairness.subgroup_shares"),
    ("subgroup_fidelity", "fairness.subgroup_fidelity"),
    ("subgroup_utility", "fairness.subgroup_utility"),
    # clinical validity
    ("rule_violations", "clinical.rule_violations"),
    ("structure_violations", "clinical.structure_violations"),
    # cost
    ("cost", "cost.resources"),
):
    registry.register(_name, f"{_PKG}.{_module}", kind="table")
for _name, _module in (
    ("event_prevalence_r2", "prevalence"),
    ("cooccurrence_r2", "cooccurrence"),
    ("events_per_patient", "events_per_patient"),
    ("time_between_events", "time_between"),
    ("event_order", "event_order"),
    ("lab_trajectories", "lab_trajectories"),
    ("timeline_tstr", "tstr"),
    ("timeline_dcr", "dcr"),
    ("timeline_violations", "violations"),
    ("timeline_cost", "cost"),
):
    registry.register(_name, f"{_PKG}.timeline.{_module}", kind="timelines")
