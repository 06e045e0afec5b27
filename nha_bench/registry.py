"""Name -> factory registries for methods, datasets, metrics and head models.

Adding a component is one module plus one ``@REGISTRY.register("name")`` line; outside packages
can add methods through the ``nha_bench.methods`` entry-point group.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Callable, Generic, TypeVar

from nha_bench.errors import NhaBenchError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of factories, optionally extended by an entry-point group."""

    def __init__(self, kind: str, entry_point_group: str | None = None):
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._factories: dict[str, Callable[..., T]] = {}
        self._entry_points_loaded = False

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering ``factory`` under ``name``."""

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories and self._factories[name] is not factory:
                raise NhaBenchError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            return factory

        return decorator

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded or self.entry_point_group is None:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=self.entry_point_group):
            if ep.name not in self._factories:
                self._factories[ep.name] = ep.load()

    def names(self) -> list[str]:
        """All registered names, sorted."""
        self._load_entry_points()
        return sorted(self._factories)

    def get(self, name: str) -> Callable[..., T]:
        """The factory registered under ``name``; a clear error lists the known names."""
        self._load_entry_points()
        try:
            return self._factories[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise NhaBenchError(
                f"unknown {self.kind} {name!r}", fix=f"use one of: {known} (see `nha-bench list`)"
            ) from None


# The project's registries. Modules register themselves with e.g. ``@METRICS.register("l1")``;
# the subpackage ``__init__`` imports its modules so that registration happens on import.
METRICS: Registry = Registry("metric")
METHODS: Registry = Registry("method", entry_point_group="nha_bench.methods")
DATASETS: Registry = Registry("dataset")
HEAD_MODELS: Registry = Registry("head model")
