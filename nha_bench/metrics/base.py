"""What every metric is: a spec (name, direction, unit, inputs), a backend, per-frame scores."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from nha_bench.mesh import Mesh

InputKind = Literal["rgb", "normal", "mesh"]


@dataclass(frozen=True)
class MetricSpec:
    """Static description of a metric, shown by `nha-bench list` and stored with every record."""

    name: str
    higher_is_better: bool
    unit: str
    inputs: InputKind
    description: str


@dataclass
class ImageBatch:
    """Predicted and ground-truth RGB, (N, H, W, 3) float32 in [0, 1], and the mask (N, H, W) bool."""

    pred: np.ndarray
    target: np.ndarray
    mask: np.ndarray


@dataclass
class NormalBatch:
    """Camera-space unit normals, (N, H, W, 3) float32, and the region mask (N, H, W) bool."""

    pred: np.ndarray
    target: np.ndarray
    mask: np.ndarray


@dataclass
class MeshPair:
    """One frame's predicted mesh and ground-truth mesh, both in mm and in the same frame."""

    pred: Mesh
    target: Mesh


@dataclass
class FrameScores:
    """Per-frame values (NaN where a frame could not be scored) and optional per-frame extras."""

    values: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    skipped_reason: str | None = None


@dataclass
class MetricResult:
    """The summary of one metric over a split; ``value`` is None when the metric is unavailable."""

    spec: MetricSpec
    value: float | None
    n_frames: int
    n_skipped: int
    backend: str
    comparable: bool = True
    unavailable_reason: str | None = None
    extra: dict[str, float] = field(default_factory=dict)


class Metric(ABC):
    """A metric over batches. Subclasses set ``spec`` and implement ``backend`` and ``score``."""

    spec: MetricSpec

    @property
    @abstractmethod
    def backend(self) -> str:
        """The model/weights/library that produced the number (e.g. ``lpips-alex-0.1``)."""

    @property
    def comparable(self) -> bool:
        """False when a stand-in model is used, so the number must not be compared to papers."""
        return True

    def unavailable_reason(self) -> str | None:
        """None when the metric can run; otherwise why not (missing weights, package...)."""
        return None

    @abstractmethod
    def score(self, batch: ImageBatch | NormalBatch | list[MeshPair]) -> FrameScores:
        """Per-frame scores of one batch; raises MetricInputError on bad input."""

    def summarize(self, scores: list[FrameScores]) -> MetricResult:
        """Average the per-frame values of all batches (NaN frames are counted as skipped)."""
        reason = self.unavailable_reason()
        if reason is not None:
            return MetricResult(self.spec, None, 0, 0, self.backend, self.comparable, reason)
        values = np.concatenate([s.values for s in scores]) if scores else np.zeros(0)
        ok = np.isfinite(values)
        extra: dict[str, float] = {}
        for key in scores[0].extras if scores else []:
            column = np.concatenate([s.extras[key] for s in scores])
            extra[key] = float(self.reduce_extra(key, column))
        value = float(values[ok].mean()) if ok.any() else None
        skipped = [s.skipped_reason for s in scores if s.skipped_reason]
        return MetricResult(
            self.spec,
            value,
            int(ok.sum()),
            int((~ok).sum()),
            self.backend,
            self.comparable,
            None if value is not None else f"none of {len(values)} frames could be scored" + (f" ({skipped[0]})" if skipped else ""),
            extra,
        )

    def reduce_extra(self, key: str, values: np.ndarray) -> float:
        """How a per-frame extra is summarised over frames (mean unless a metric overrides)."""
        finite = values[np.isfinite(values)]
        return float(finite.mean()) if len(finite) else float("nan")
