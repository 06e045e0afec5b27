"""Geometry metrics of the synthetic protocol (paper Table 1): Hausdorff distances and normal error.

- ``hausdorff_full`` / ``hausdorff_face``: the paper's "average single-sided Hausdorff distance
  from prediction to ground truth" ("mesh alignment error, as in [58]"). Per frame, ``n_samples``
  points are drawn area-uniformly (seeded) on the prediction surface and similarity-aligned to the
  ground-truth head surface (``align``, see ``FRAME_CONVENTION``); each point's distance to
  the closest point of the ground-truth surface (exact point-to-triangle distance, libigl's AABB
  tree) is taken; the frame's value is their mean and its extra ``max`` their maximum. Extras
  ``unaligned`` (the same mean before alignment, camera frame), ``align_shift_mm`` and
  ``align_rotation_deg`` keep the depth/pose error visible. Frames are averaged; ``max`` is the
  maximum over frames. See ``FRAME_CONVENTION`` and ``REGION_RULE`` for what is compared.
- ``normal_error``: mean per-pixel angle (degrees) between predicted and ground-truth
  camera-space normals inside the head mask, per frame, then averaged over frames.
"""

from __future__ import annotations

import hashlib
from importlib.metadata import version
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import trimesh
from scipy.spatial.transform import Rotation

from nha_bench.errors import DatasetError, MetricInputError
from nha_bench.mesh import Mesh
from nha_bench.metrics.base import FrameScores, MeshPair, Metric, MetricSpec, NormalBatch
from nha_bench.metrics.protocol import check_masks_not_empty
from nha_bench.registry import METRICS

if TYPE_CHECKING:
    import igl

FRAME_CONVENTION = (
    "prediction and ground-truth meshes are both given in the camera frame of their frame, in "
    "millimetres; per frame the prediction's 'face' region is aligned to the ground-truth 'head' "
    "surface by point-to-surface ICP, first rigidly (rotation + translation), then as a similarity "
    "(plus one uniform scale), as a mesh alignment error [58] for monocular reconstructions must: "
    "a head s times larger and s times further away projects to the same images, so neither depth "
    "nor size is observable (the NoW benchmark aligns on the face, with scale, for the same "
    "reason). The face anchors the alignment because it is the part every method must place "
    "(hair, neck and the back of the head would let the fit rotate to hide missing volume). The "
    "transform is applied to the whole prediction for hausdorff_full and hausdorff_face; the "
    "rigid-only and camera-frame distances stay available as the extras 'rigid' and 'unaligned'"
)
REGION_RULE = (
    "a triangle belongs to a region when all three of its vertices are in the mesh's vertex mask "
    "of that name; hausdorff_full: all prediction triangles vs all ground-truth triangles (head, "
    "neck and hair: single-sided, so ground truth beyond the prediction costs nothing); "
    "hausdorff_face: prediction 'face' triangles vs ground-truth 'face' triangles; both 'face' masks "
    "follow one rule (nha_bench.head.face_outline.FACE_OUTLINE_RULE): the synthetic ground "
    "truth's face is the rule on its neutral head, a head model's is its face region inside the rule "
    "on its canonical head (head.base.scored_face_mask)"
)
ALIGN_REGION = "face"
"""The prediction's region that is aligned (to the whole ground-truth head surface)."""
DEFAULT_SAMPLES = 20000
ICP_SAMPLES = 2000
"""ICP runs on this many seeded area-uniform samples of the prediction's face: < 0.5 s per frame."""
ICP_MAX_ITERATIONS = 30
ICP_TOLERANCE_MM = 1e-3
"""ICP stops when the mean closest-point distance improves by less than this."""
MAX_SCALE = 1.5
"""The similarity alignment scales the prediction by 1/1.5-1.5 at most (monocular size errors are
~15 %); the bound keeps degenerate scenes (a patch on a plane) from shrinking to a point."""
MAX_STEP_SCALE = 1.1
"""One ICP step changes the scale by at most 10 % (keeps the linearisation valid)."""
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
    import igl  # imported where used: fitting on the GPU machine imports this module without libigl

    squared, _, _ = igl.point_mesh_squared_distance(
        np.ascontiguousarray(points, dtype=np.float64),
        np.ascontiguousarray(vertices, dtype=np.float64),
        np.ascontiguousarray(faces, dtype=np.int64),
    )
    return np.sqrt(squared)


def transform(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``points`` (N, 3) moved by the 4x4 ``matrix``."""
    return points @ matrix[:3, :3].T + matrix[:3, 3]


def _plane_step(points: np.ndarray, closest: np.ndarray, normals: np.ndarray,
                scale_range: tuple[float, float]) -> np.ndarray:
    """One linearised point-to-plane ICP step (Low 2004) about the points' centroid: a 4x4 rigid
    update when ``scale_range`` is (1, 1), else a similarity update (uniform scale as one more
    unknown, clipped to ``scale_range``).
    Hand-written: trimesh and libigl have only point-to-point ICP, which here converges too slowly
    (0.5 mm left on an exactly rigid copy after 30 iterations)."""
    centroid = points.mean(axis=0)
    centred = points - centroid
    with_scale = scale_range != (1.0, 1.0)
    columns = [np.cross(centred, normals), normals]
    if with_scale:
        columns.append((centred * normals).sum(axis=1, keepdims=True))
    rhs = ((closest - points) * normals).sum(axis=1)
    solution = np.linalg.lstsq(np.hstack(columns), rhs, rcond=None)[0]
    scale = float(np.clip(1.0 + solution[6], *scale_range)) if with_scale else 1.0
    linear = scale * Rotation.from_rotvec(solution[:3]).as_matrix()
    update = np.eye(4)
    update[:3, :3] = linear
    update[:3, 3] = centroid + solution[3:6] - linear @ centroid
    return update


class _Surface(NamedTuple):
    """An ICP target: the triangle mesh, its libigl AABB tree and unit face normals, built once."""

    vertices: np.ndarray
    faces: np.ndarray
    tree: igl.AABB
    normals: np.ndarray


def _surface(vertices: np.ndarray, faces: np.ndarray) -> _Surface:
    import igl  # see point_surface_distances

    vertices = np.ascontiguousarray(vertices, dtype=np.float64)
    faces = np.ascontiguousarray(faces, dtype=np.int64)
    tree = igl.AABB()
    tree.init(vertices, faces)
    tri = vertices[faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.divide(normals, length, out=np.zeros_like(normals), where=length > 0)
    return _Surface(vertices, faces, tree, normals)


def _icp(points: np.ndarray, target: _Surface, initial: np.ndarray, with_scale: bool) -> tuple[np.ndarray, float]:
    """Point-to-plane ICP from ``initial``: closest points and their triangles by libigl. Returns
    (the matrix with the lowest mean distance seen, that distance)."""
    matrix, best, best_error = initial, initial, np.inf
    for _ in range(ICP_MAX_ITERATIONS):
        moved = transform(points, matrix)
        squared, triangle, closest = target.tree.squared_distance(target.vertices, target.faces, moved)
        error = float(np.sqrt(squared).mean())
        improvement = best_error - error
        if error < best_error:
            best, best_error = matrix, error
        if improvement < ICP_TOLERANCE_MM:
            break
        scale_range = (1.0, 1.0)
        if with_scale:  # one step changes the scale by <= MAX_STEP_SCALE; the total stays in MAX_SCALE
            current = matrix_scale(matrix)
            scale_range = (max(1.0 / MAX_STEP_SCALE, 1.0 / (MAX_SCALE * current)), min(MAX_STEP_SCALE, MAX_SCALE / current))
        matrix = _plane_step(moved, closest, target.normals[triangle], scale_range) @ matrix
    return best, best_error


def align(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rigid, similarity) 4x4 transforms moving ``points`` (N, 3) onto the surface
    ``(vertices, faces)`` by point-to-plane ICP. The rigid ICP runs from two starts, the lower final
    mean distance kept: the identity (both meshes are in the camera frame) and the translation
    matching the centroids (from the identity, a rigid copy 180 mm too deep stays at ~55 mm;
    tested). The similarity ICP (rotation, translation, uniform scale within
    [1 / MAX_SCALE, MAX_SCALE]) continues from the rigid result; its scale is the extra
    'align_scale', so a prediction of the wrong size (or units) stays visible."""
    points = np.ascontiguousarray(points, dtype=np.float64)
    target = _surface(vertices, faces)
    shifted = np.eye(4)
    shifted[:3, 3] = target.vertices[np.unique(target.faces)].mean(axis=0) - points.mean(axis=0)
    runs = [_icp(points, target, start, with_scale=False) for start in (np.eye(4), shifted)]
    rigid = min(runs, key=lambda run: run[1])[0]
    similarity, _ = _icp(points, target, rigid, with_scale=True)
    return rigid, similarity


ALIGNMENT_CACHE_SIZE = 256
"""Recent alignments kept by ``align_to_head``: hausdorff_full and hausdorff_face score the same
frames and share one ICP per frame."""
_alignments: dict[tuple[str, str, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _mesh_digest(mesh: Mesh, region: str) -> str:
    """Content hash of the vertices, faces and ``region`` mask of ``mesh`` (cache key)."""
    digest = hashlib.blake2b(digest_size=16)
    for array in (mesh.vertices, mesh.faces, mesh.vertex_masks.get(region, np.zeros(0))):
        array = np.ascontiguousarray(array)
        digest.update(str((array.dtype, array.shape)).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def align_to_head(pred: Mesh, target: Mesh, seed: int = 0,
                  roles: tuple[str, str] = ("prediction", "ground truth")) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rigid, similarity, ICP samples): the alignment of FRAME_CONVENTION, i.e. ``align`` of
    ICP_SAMPLES seeded samples of the prediction's ALIGN_REGION onto the ground-truth 'head'.
    Results are cached by mesh content (ALIGNMENT_CACHE_SIZE); callers must not modify them."""
    key = (_mesh_digest(pred, ALIGN_REGION), _mesh_digest(target, "head"), seed)
    if key not in _alignments:  # a hit means these meshes and masks passed the checks below before
        anchor = region_mesh(pred, ALIGN_REGION, roles[0])
        head = region_mesh(target, "head", roles[1])
        samples, _ = trimesh.sample.sample_surface(anchor, ICP_SAMPLES, seed=seed)
        rigid, similarity = align(samples, head.vertices, head.faces)
        if len(_alignments) >= ALIGNMENT_CACHE_SIZE:
            _alignments.pop(next(iter(_alignments)))  # oldest first (dicts keep insertion order)
        _alignments[key] = (rigid, similarity, samples)
    return _alignments[key]


def matrix_scale(matrix: np.ndarray) -> float:
    """Uniform scale of a 4x4 similarity transform."""
    return float(np.cbrt(np.linalg.det(matrix[:3, :3])))


def alignment_extras(points: np.ndarray, matrix: np.ndarray) -> tuple[float, float, float]:
    """(distance the centroid of ``points`` moves, rotation angle in degrees, scale) of the
    similarity ``matrix``; the translation vector itself mixes in the rotation about the camera
    origin ~1 m away."""
    centroid = points.mean(axis=0)
    shift = float(np.linalg.norm(transform(centroid[None], matrix)[0] - centroid))
    scale = matrix_scale(matrix)
    cos = (np.trace(matrix[:3, :3] / scale) - 1.0) / 2.0
    return shift, float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))), scale


class _Hausdorff(Metric):
    """Mean distance (mm) from the similarity-aligned prediction surface to the ground-truth
    surface, per frame."""

    pred_region: str | None
    target_region: str | None

    def __init__(self, n_samples: int = DEFAULT_SAMPLES, seed: int = 0):
        if n_samples < 1:
            raise MetricInputError(f"{self.spec.name}: n_samples must be >= 1, got {n_samples}")
        self.n_samples, self.seed = n_samples, seed

    @property
    def backend(self) -> str:
        return (
            f"libigl-{version('libigl')}:point_mesh_squared_distance+AABB,"
            f"trimesh-{trimesh.__version__}:{self.n_samples} area-uniform surface samples "
            f"(seed {self.seed}), rigid then similarity point-to-plane ICP on {ICP_SAMPLES} samples, "
            f"<= {ICP_MAX_ITERATIONS} iterations, tol {ICP_TOLERANCE_MM} mm; "
            f"prediction {self.pred_region or 'whole mesh'} vs ground truth {self.target_region or 'whole mesh'}"
        )

    def _frame(self, pair: MeshPair, i: int) -> tuple[float, ...]:
        """(aligned mean, aligned max, rigid-only mean, unaligned mean, align shift mm, align
        rotation deg, align scale)."""
        name = self.spec.name
        roles = (f"prediction mesh of batch frame {i}", f"ground-truth mesh of batch frame {i}")
        for mesh, role in zip((pair.pred, pair.target), roles):
            try:
                mesh.check(role)
            except DatasetError as exc:
                raise MetricInputError(f"{name}: {exc}") from exc
        rigid, matrix, icp_points = align_to_head(pair.pred, pair.target, self.seed, (f"{name}: {roles[0]}", f"{name}: {roles[1]}"))
        pred = region_mesh(pair.pred, self.pred_region, f"{name}: {roles[0]}")
        target = region_mesh(pair.target, self.target_region, f"{name}: {roles[1]}")
        points, _ = trimesh.sample.sample_surface(pred, self.n_samples, seed=self.seed)
        aligned = point_surface_distances(transform(points, matrix), target.vertices, target.faces)
        rigid_only = point_surface_distances(transform(points, rigid), target.vertices, target.faces)
        unaligned = point_surface_distances(points, target.vertices, target.faces)
        shift, rotation, scale = alignment_extras(icp_points, matrix)
        return aligned.mean(), aligned.max(), rigid_only.mean(), unaligned.mean(), shift, rotation, scale

    def score(self, batch: list[MeshPair]) -> FrameScores:
        if not isinstance(batch, list) or not batch:
            raise MetricInputError(
                f"{self.spec.name}: expected a non-empty list of MeshPair",
                fix="pass one MeshPair per frame",
            )
        rows = np.array([self._frame(pair, i) for i, pair in enumerate(batch)], dtype=np.float64)
        keys = ("max", "rigid", "unaligned", "align_shift_mm", "align_rotation_deg", "align_scale")
        return FrameScores(rows[:, 0], {key: rows[:, k + 1] for k, key in enumerate(keys)})

    def reduce_extra(self, key: str, values: np.ndarray) -> float:
        """``max`` is the largest distance over all frames; other extras use the default mean."""
        if key == "max":
            finite = values[np.isfinite(values)]
            return float(finite.max()) if len(finite) else float("nan")
        return super().reduce_extra(key, values)


@METRICS.register("hausdorff_full")
class HausdorffFull(_Hausdorff):
    """Whole prediction mesh vs the whole ground-truth mesh (head, neck and hair)."""

    spec = MetricSpec(
        name="hausdorff_full",
        higher_is_better=False,
        unit="mm",
        inputs="mesh",
        description="mean single-sided distance from the whole predicted mesh, similarity-aligned (ICP of its "
        "face) to the ground-truth head, to the whole ground-truth surface (head, neck, hair; mm); extras 'max' (largest distance), "
        "'rigid' (mean after the rigid alignment alone), 'unaligned' (camera-frame mean), "
        "'align_shift_mm', 'align_rotation_deg', 'align_scale'",
    )
    pred_region = None
    target_region = None


@METRICS.register("hausdorff_face")
class HausdorffFace(_Hausdorff):
    """Prediction 'face' region vs the ground-truth 'face' region."""

    spec = MetricSpec(
        name="hausdorff_face",
        higher_is_better=False,
        unit="mm",
        inputs="mesh",
        description="mean single-sided distance from the predicted face region to the ground-truth face "
        "surface (mm) after the similarity ICP alignment of the predicted face to the ground-truth "
        "head; extras as hausdorff_full",
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
    check_masks_not_empty(mask, "normal_error")
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
