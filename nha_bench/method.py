"""The Method protocol: what an avatar method implements and what it may see at each step.

The runner owns the training loop (progress, checkpoints, resume): a method exposes
``num_iterations`` and ``train_iteration(step)``. On test frames a method may re-optimise only
expression and pose (``fit_frame_params``, the paper's protocol); it never trains on test images
otherwise. Heavy imports belong inside the method's own module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from nha_bench.datasets.format import Subject
from nha_bench.mesh import Mesh

OUTPUTS = frozenset({"rgb", "normal", "mesh"})
# tracking.npz arrays with one row per frame (the rest, e.g. shape and albedo, are shared)
PER_FRAME_TRACKING = ("expr", "pose", "translation", "sh", "landmark_error_px")


@dataclass
class Sequence:
    """The frames of one split of one subject, loaded on demand."""

    subject: Subject
    split: str
    positions: tuple[int, ...] | None = None  # a subset of the split (positions in it), else all

    @property
    def indices(self) -> list[int]:
        frames = self.subject.split(self.split)
        return frames if self.positions is None else [frames[p] for p in self.positions]

    @property
    def K(self) -> np.ndarray:
        return self.subject.meta.K

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return self.subject.meta.height, self.subject.meta.width

    def __len__(self) -> int:
        return len(self.indices)

    def load(self, field_name: str, positions: list[int] | None = None) -> np.ndarray:
        """Stack one per-frame image field (rgb, mask, parsing, normal) for the given positions."""
        reader = getattr(self.subject, field_name)
        chosen = self.indices if positions is None else [self.indices[p] for p in positions]
        return np.stack([reader(i) for i in chosen])

    def landmarks(self) -> np.ndarray:
        """(N, 68, 3) landmarks of this split's frames."""
        return self.subject.landmarks()[self.indices]

    def tracking(self) -> dict[str, np.ndarray]:
        """Tracked head-model parameters of this split's frames (shape is shared)."""
        data = self.subject.tracking()
        return {k: (v[self.indices] if k in PER_FRAME_TRACKING else v) for k, v in data.items()}


@dataclass
class Renders:
    """What a method renders for a test sequence, frame-aligned with ``indices``.

    rgb: (N, H, W, 3) float32 in [0, 1]; normal: (N, H, W, 3) camera-space unit normals or None;
    meshes: per-frame meshes in the dataset's units (mm) and camera frame, or None.
    """

    indices: list[int]
    rgb: np.ndarray
    normal: np.ndarray | None = None
    meshes: list[Mesh] | None = None


class Method(ABC):
    """An avatar method. Subclasses set the class variables and implement the abstract methods."""

    name: ClassVar[str]
    display_name: ClassVar[str]
    provides: ClassVar[frozenset[str]] = frozenset({"rgb"})
    presets: ClassVar[tuple[str, ...]] = ("tiny", "paper")
    gpu_presets: ClassVar[frozenset[str]] = frozenset({"paper"})
    # Numbers the method's paper reported (metric -> value), shown beside measured ones.
    paper_scores: ClassVar[dict[str, float]] = {}
    # The reference every method refines (the tracked head model): tables and grids show it after
    # the methods compared against it (grids: GT | NHA | tracked head model).
    reference_baseline: ClassVar[bool] = False
    # Keyword arguments the constructor takes (`nha-bench run --option FIELD=JSON`).
    option_fields: ClassVar[frozenset[str]] = frozenset()

    def config(self) -> dict:
        """The resolved configuration after ``setup`` (hashed into every result record)."""
        return {}

    def needs_gpu(self, preset: str) -> bool:
        """Whether ``preset`` is meant for a GPU (the runner warns when run without one)."""
        return preset in self.gpu_presets

    @abstractmethod
    def setup(self, train: Sequence, preset: str, device: str, seed: int) -> None:
        """Prepare to fit the training sequence with a preset's configuration."""

    @abstractmethod
    def num_iterations(self) -> int:
        """Total number of training iterations for the chosen preset."""

    @abstractmethod
    def train_iteration(self, step: int) -> dict[str, float]:
        """Run one optimisation step and return its losses."""

    def fit_frame_params(self, test: Sequence) -> None:
        """Optimise only expression and pose on the test frames (default: use tracked values)."""

    @abstractmethod
    def render(self, test: Sequence) -> Renders:
        """Render the test frames."""

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write a checkpoint of the fitted avatar (enough for ``load`` to continue or render)."""

    @abstractmethod
    def load(self, directory: Path) -> None:
        """Restore from ``save``; called after ``setup``."""
