"""Triangle meshes with named vertex regions, as stored in datasets and returned by methods."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nha_bench.errors import DatasetError


@dataclass
class Mesh:
    """Vertices (V, 3) float in the dataset's units (mm), faces (F, 3) int, region masks (V,) bool.

    ``vertex_masks`` uses the names ``"face"`` and ``"head"`` for the geometry metrics.
    """

    vertices: np.ndarray
    faces: np.ndarray
    vertex_masks: dict[str, np.ndarray] = field(default_factory=dict)

    def check(self, source: str | Path = "<mesh>") -> "Mesh":
        """Raise DatasetError naming ``source`` if shapes, indices or values are invalid."""
        v, f = np.asarray(self.vertices), np.asarray(self.faces)
        if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0:
            raise DatasetError(f"mesh vertices must be (V, 3), got {v.shape}", source)
        if f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
            raise DatasetError(f"mesh faces must be (F, 3), got {f.shape}", source)
        if not np.isfinite(v).all():
            raise DatasetError("mesh vertices contain NaN or inf", source)
        if f.min() < 0 or f.max() >= len(v):
            raise DatasetError(
                f"mesh faces index vertex {f.max()} but the mesh has {len(v)} vertices",
                source,
                fix="vertices and faces come from different meshes; re-export the mesh",
            )
        for name, m in self.vertex_masks.items():
            if np.asarray(m).shape != (len(v),):
                raise DatasetError(
                    f"vertex mask {name!r} has shape {np.asarray(m).shape}, expected ({len(v)},)",
                    source,
                    fix="the mask belongs to another mesh topology; regenerate it",
                )
        return self

    def save(self, path: str | Path) -> None:
        """Write to ``.npz`` with keys vertices, faces and mask_<name>."""
        masks = {f"mask_{k}": np.asarray(m, dtype=bool) for k, m in self.vertex_masks.items()}
        np.savez_compressed(
            path,
            vertices=np.asarray(self.vertices, dtype=np.float32),
            faces=np.asarray(self.faces, dtype=np.int32),
            **masks,
        )

    @classmethod
    def load(cls, path: str | Path) -> "Mesh":
        """Read a mesh written by :meth:`save`; errors name the file."""
        path = Path(path)
        if not path.is_file():
            raise DatasetError("mesh file is missing", path, fix="regenerate the dataset")
        try:
            with np.load(path) as data:
                mesh = cls(
                    vertices=data["vertices"].astype(np.float64),
                    faces=data["faces"].astype(np.int64),
                    vertex_masks={k[5:]: data[k].astype(bool) for k in data.files if k.startswith("mask_")},
                )
        except (OSError, ValueError, KeyError) as exc:
            raise DatasetError(f"cannot read mesh ({exc})", path, fix="regenerate the dataset") from exc
        return mesh.check(path)
