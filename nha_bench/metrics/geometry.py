"""Geometry metrics of the synthetic protocol (paper Table 1): Hausdorff distances and normal error.

- ``hausdorff_full`` / ``hausdorff_face``: the paper's "average single-sided Hausdorff distance
  from prediction to ground truth". Per frame, ``n_samples`` points are drawn area-uniformly
  (seeded) on the prediction surface; each point's distance to the closest point of the
  ground-truth surface (exact point-to-triangle distance, libigl's AABB tree) is taken; the frame's
  value is their mean and its extra ``max`` their maximum. Frames are averaged; ``max`` is the
  maximum over frames. See ``FRAME_CONVENTION`` and ``REGION_RULE`` for what is compared.
- ``normal_error``: mean per-pixel angle (degrees) between predicted and ground-truth
  camera-space normals inside the head mask, per frame, then averaged over frames.
"""

from __future__ import annotations

from importlib.metadata import version

import igl
import numpy as np
import trimesh

from nha_bench.errors import DatasetError, MetricInputError
from nha_bench.mesh import Mesh
from nha_bench.metrics.base import FrameScores, MeshPair, Metric, MetricSpec, NormalBatch
from nha_bench.registry import METRICS

FRAME_CONVENTION = (
    "prediction and ground-truth meshes are both given in the camera frame of their frame, in "
    "millimetres; they are compared as given, with no Procrustes, ICP or scale alignment"
)
REGION_RULE = (
    "a triangle belongs to a region when all three of its vertices are in the mesh's vertex mask "
    "of that name; hausdorff_full: all prediction triangles vs ground-truth 'head' triangles; "
    "hausdorff_face: prediction 'face' triangles vs ground-truth 'face' triangles"
)
DEFAULT_SAMPLES = 20000
MIN_NORMAL_LENGTH = 1e-3
"""Shorter normals have no direction (an 8-bit normal map quantises components in steps of 2/255)."""

MESH_MASK_FIX = (
    "datasets store mask_face and mask_head in mesh/*.npz; a method returns its meshes with "
    "'face' (and 'head') vertex masks from its head model's regions"
)


def region_mesh(mesh: Mesh, region: str | None, role: str) -> trimesh.Trimesh:
    """The triangles of ``mesh`` whose 3 vertices are in ``region`` (None: all), as a trimesh
    (vertices outside the region stay unreferenced; trimesh's sampling and closest-point search
    only use referenced ones)."""
    faces = np.asarray(mesh.faces, dtype=np.int64)
    if region is not None:
        if region not in mesh.vertex_masks:
            raise MetricInputError(
                f"{role} has no {region!r} vertex mask (it has: {sorted(mesh.vertex_masks) or 'none'})",
                fix=MESH_MASK_FIX,
            )
        inside = np.asarray(mesh.vertex_masks[region], dtype=bool)
        faces = faces[inside[faces].all(axis=1)]
        if len(faces) == 0:
            raise MetricInputError(
                f"{role}: no triangle has all three vertices in the {region!r} vertex mask",
                fix=MESH_MASK_FIX,
            )
    return trimesh.Trimesh(np.asarray(mesh.vertices, dtype=np.float64), faces, process=False)


def point_surface_distances(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Exact distance from each of ``points`` (N, 3) to the nearest point of the triangle mesh
    ``(vertices, faces)``; unreferenced vertices are ignored.

    libigl's AABB tree (``igl.point_mesh_squared_distance``): the same values as
    ``trimesh.proximity.closest_point`` (which may pick a candidate up to its ``tol.merge`` = 1e-8
    mm^2 worse when two are that close), 8-20x faster (reports/benchmarks/hausdorff.md)."""
    squared, _, _ = igl.point_mesh_squared_distance(
        np.ascontiguousarray(points, dtype=np.float64),
        np.ascontiguousarray(vertices, dtype=np.float64),
        np.ascontiguousarray(faces, dtype=np.int64),
    )
    return np.sqrt(squared)


def surface_distances(
    pred: trimesh.Trimesh, target: trimesh.Trimesh, n_samples: int, seed: int
) -> np.ndarray:
    """Distances from ``n_samples`` area-uniform points on ``pred`` to the surface of ``target``."""
    points, _ = trimesh.sample.sample_surface(pred, n_samples, seed=seed)
    return point_surface_distances(points, target.vertices, target.faces)


class _Hausdorff(Metric):
    """Mean distance (mm) from the prediction surface to the ground-truth surface, per frame."""

    pred_region: str | None
    target_region: str

    def __init__(self, n_samples: int = DEFAULT_SAMPLES, seed: int = 0):
        if n_samples < 1:
            raise MetricInputError(f"{self.spec.name}: n_samples must be >= 1, got {n_samples}")
        self.n_samples, self.seed = n_samples, seed

    @property
    def backend(self) -> str:
        return (
            f"libigl-{version('libigl')}:point_mesh_squared_distance,"
            f"trimesh-{trimesh.__version__}:{self.n_samples} area-uniform surface samples "
            f"(seed {self.seed})"
        )

    def score(self, batch: list[MeshPair]) -> FrameScores:
        name = self.spec.name
        if not isinstance(batch, list) or not batch:
            raise MetricInputError(
                f"{name}: expected a non-empty list of MeshPair", fix="pass one MeshPair per frame"
            )
        means, maxima = np.empty(len(batch)), np.empty(len(batch))
        for i, pair in enumerate(batch):
            meshes = []
            for mesh, role, region in (
                (pair.pred, f"prediction mesh of batch frame {i}", self.pred_region),
                (pair.target, f"ground-truth mesh of batch frame {i}", self.target_region),
            ):
                try:
                    mesh.check(role)
                except DatasetError as exc:
                    raise MetricInputError(f"{name}: {exc}") from exc
                meshes.append(region_mesh(mesh, region, f"{name}: {role}"))
            distances = surface_distances(meshes[0], meshes[1], self.n_samples, self.seed)
            means[i], maxima[i] = distances.mean(), distances.max()
        return FrameScores(means, {"max": maxima})

    def reduce_extra(self, key: str, values: np.ndarray) -> float:
        """``max`` is the largest distance over all frames; other extras use the default mean."""
        if key == "max":
            finite = values[np.isfinite(values)]
            return float(finite.max()) if len(finite) else float("nan")
        return super().reduce_extra(key, values)


@METRICS.register("hausdorff_full")
class HausdorffFull(_Hausdorff):
    """Whole prediction mesh vs the ground-truth 'head' region."""

    spec = MetricSpec(
        name="hausdorff_full",
        higher_is_better=False,
        unit="mm",
        inputs="mesh",
        description="mean single-sided distance from the whole predicted mesh to the ground-truth "
        "head surface (camera frame, mm, no alignment); extra 'max' is the largest distance",
    )
    pred_region = None
    target_region = "head"


@METRICS.register("hausdorff_face")
class HausdorffFace(_Hausdorff):
    """Prediction 'face' region vs the ground-truth 'face' region."""

    spec = MetricSpec(
        name="hausdorff_face",
        higher_is_better=False,
        unit="mm",
        inputs="mesh",
        description="mean single-sided distance from the predicted face region to the ground-truth "
        "face region surface (camera frame, mm, no alignment); extra 'max' is the largest distance",
    )
    pred_region = "face"
    target_region = "face"


def check_normal_batch(batch: NormalBatch) -> None:
    """Raise MetricInputError unless shapes match, masks are non-empty and every normal inside
    the mask is finite and of non-zero length."""
    fix = "render camera-space normals at the dataset's resolution, (N, H, W, 3), finite in the mask"
    pred, target, mask = (np.asarray(x) for x in (batch.pred, batch.target, batch.mask))
    if target.ndim != 4 or target.shape[-1] != 3 or len(target) == 0:
        raise MetricInputError(
            f"normal_error: ground truth has shape {target.shape}, expected (N>0, H, W, 3)", fix=fix
        )
    if pred.shape != target.shape:
        raise MetricInputError(
            f"normal_error: prediction has shape {pred.shape} but the ground truth has "
            f"{target.shape}",
            fix=fix,
        )
    if mask.shape != target.shape[:3] or mask.dtype != np.bool_:
        raise MetricInputError(
            f"normal_error: mask is {mask.dtype} {mask.shape}, expected bool {target.shape[:3]}",
            fix="use the dataset's head mask of the same frames at the same resolution",
        )
    empty = np.flatnonzero(~mask.reshape(len(mask), -1).any(axis=1))
    if len(empty):
        raise MetricInputError(
            f"normal_error: the mask is empty in batch frames {empty[:10].tolist()}",
            fix="check the dataset's mask/ folder for these frames",
        )
    for name, array in (("prediction", pred), ("ground truth", target)):
        inside = array[mask]
        bad = ~np.isfinite(inside).all(axis=1)
        if bad.any():
            raise MetricInputError(
                f"normal_error: {name} has {int(bad.sum())} NaN/inf normals inside the mask", fix=fix
            )
        short = np.linalg.norm(inside, axis=1) < MIN_NORMAL_LENGTH
        if short.any():
            raise MetricInputError(
                f"normal_error: {name} has {int(short.sum())} zero-length normals inside the mask",
                fix=fix,
            )


@METRICS.register("normal_error")
class NormalError(Metric):
    """Mean angle (degrees) between predicted and ground-truth normals inside the head mask."""

    spec = MetricSpec(
        name="normal_error",
        higher_is_better=False,
        unit="deg",
        inputs="normal",
        description="mean per-pixel angle between predicted and ground-truth camera-space normals "
        "inside the head mask (both renormalised), averaged per frame then over frames",
    )

    @property
    def backend(self) -> str:
        return "numpy"

    def score(self, batch: NormalBatch) -> FrameScores:
        check_normal_batch(batch)
        mask = np.asarray(batch.mask)
        values = np.empty(len(mask))
        for i in range(len(mask)):
            p = np.asarray(batch.pred[i], dtype=np.float64)[mask[i]]
            t = np.asarray(batch.target[i], dtype=np.float64)[mask[i]]
            cos = (p * t).sum(axis=1) / (np.linalg.norm(p, axis=1) * np.linalg.norm(t, axis=1))
            values[i] = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))).mean()
        return FrameScores(values)
