"""Hausdorff and normal-error metrics against hand-made shapes and brute-force references."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from nha_bench.errors import MetricInputError
from nha_bench.mesh import Mesh
from nha_bench.metrics.base import MeshPair, NormalBatch
from nha_bench.metrics.geometry import (
    FRAME_CONVENTION,
    REGION_RULE,
    HausdorffFace,
    HausdorffFull,
    NormalError,
    point_surface_distances,
    align,
)
from nha_bench.registry import METRICS


def square(
    size: float, z: float, tilt: float = 0.0, offset: tuple[float, float] = (0.0, 0.0)
) -> tuple[np.ndarray, np.ndarray]:
    """Two triangles covering [ox, ox+size] x [oy, oy+size] at height z + tilt * (x - ox)."""
    ox, oy = offset
    xy = np.array([[0, 0], [size, 0], [size, size], [0, size]], float)
    v = np.column_stack([xy[:, 0] + ox, xy[:, 1] + oy, z + tilt * xy[:, 0]])
    return v, np.array([[0, 1, 2], [0, 2, 3]])


def mesh(parts: list[tuple[np.ndarray, np.ndarray]], **region_parts: list[int]) -> Mesh:
    """Concatenate parts; each keyword is a region made of the listed part indices."""
    vertices, faces, owner, start = [], [], [], 0
    for k, (v, f) in enumerate(parts):
        vertices.append(v)
        faces.append(f + start)
        owner += [k] * len(v)
        start += len(v)
    owner_arr = np.array(owner)
    masks = {name: np.isin(owner_arr, idx) for name, idx in region_parts.items()}
    return Mesh(np.concatenate(vertices), np.concatenate(faces), masks)


def test_registered_with_specs_and_conventions():
    for name, cls, unit in (
        ("hausdorff_full", HausdorffFull, "mm"),
        ("hausdorff_face", HausdorffFace, "mm"),
        ("normal_error", NormalError, "deg"),
    ):
        assert METRICS.get(name) is cls
        assert cls.spec.unit == unit and not cls.spec.higher_is_better
    assert "camera frame" in FRAME_CONVENTION and "uniform scale" in FRAME_CONVENTION
    assert "all three of its vertices" in REGION_RULE


def test_parallel_planes_unaligned_distance_and_aligned_onto_each_other():
    pred = mesh([square(10, 0.0, offset=(5, 5))], face=[0])
    target = mesh([square(40, 2.5)], head=[0])  # larger: every foot point is inside it
    scores = HausdorffFull(n_samples=1000).score([MeshPair(pred, target)])
    assert scores.extras["unaligned"][0] == pytest.approx(2.5, abs=1e-9)
    # rigid ICP slides the small square onto the plane
    assert scores.values[0] == pytest.approx(0.0, abs=1e-6)
    assert scores.extras["max"][0] == pytest.approx(0.0, abs=1e-6)
    assert scores.extras["align_shift_mm"][0] >= 2.5 - 1e-6  # at least the gap (it may also slide)


def test_concentric_spheres_give_radius_difference():
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=100.0)
    pred = Mesh(sphere.vertices.copy(), sphere.faces.copy(), {"face": np.ones(len(sphere.vertices), bool)})
    target = Mesh(sphere.vertices * 1.03, sphere.faces.copy(), {"head": np.ones(len(sphere.vertices), bool)})
    scores = HausdorffFull(n_samples=5000).score([MeshPair(pred, target)])
    # no rigid motion brings them closer (faceting of a 100 mm icosphere moves points by < 0.05 mm);
    # the similarity alignment scales the radius gap away
    assert scores.extras["rigid"][0] == pytest.approx(3.0, abs=0.05)
    assert scores.extras["align_scale"][0] == pytest.approx(1.03, abs=1e-3)
    assert scores.values[0] < 0.05


def point_triangle_distance(points: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Brute force: min of the in-plane foot distance (if inside) and the three edge distances."""
    a, b, c = tri
    n = np.cross(b - a, c - a)
    n = n / np.linalg.norm(n)
    height = (points - a) @ n
    foot = points - height[:, None] * n
    inside = np.ones(len(points), bool)
    for p, q in ((a, b), (b, c), (c, a)):
        inside &= np.cross(q - p, foot - p) @ n >= 0
    best = np.where(inside, np.abs(height), np.inf)
    for p, q in ((a, b), (b, c), (c, a)):
        t = np.clip((points - p) @ (q - p) / ((q - p) @ (q - p)), 0, 1)
        best = np.minimum(best, np.linalg.norm(points - (p + t[:, None] * (q - p)), axis=1))
    return best


def test_random_mesh_matches_brute_force_point_to_triangle():
    rng = np.random.default_rng(3)
    def random_mesh(n_v: int, n_f: int) -> Mesh:
        faces = np.array([rng.choice(n_v, 3, replace=False) for _ in range(n_f)])
        return Mesh(rng.uniform(-20, 20, (n_v, 3)), faces, {"head": np.ones(n_v, bool), "face": np.ones(n_v, bool)})
    pred, target = random_mesh(20, 15), random_mesh(30, 25)
    metric = HausdorffFull(n_samples=400, seed=7)
    scores = metric.score([MeshPair(pred, target)])
    # the same seeded samples, distances by brute force over every target triangle
    points, _ = trimesh.sample.sample_surface(
        trimesh.Trimesh(pred.vertices, pred.faces, process=False), 400, seed=7
    )
    brute = np.min([point_triangle_distance(points, target.vertices[f]) for f in target.faces], axis=0)
    assert scores.extras["unaligned"][0] == pytest.approx(brute.mean(), rel=1e-9)
    assert scores.values[0] <= brute.mean() + 1e-9  # ICP keeps the identity if nothing is better


def test_fast_distances_equal_trimesh_closest_point():
    """Connected noisy sphere and a random triangle soup; query points on the surface (vertices,
    edge midpoints, inside triangles), near it and far away (up to 50x the mesh size)."""
    rng = np.random.default_rng(11)
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=50.0)
    noisy = sphere.vertices * rng.uniform(0.9, 1.1, (len(sphere.vertices), 1))
    soup_v = rng.uniform(-30, 30, (60, 3))
    soup_f = np.array([rng.choice(60, 3, replace=False) for _ in range(40)])
    for vertices, faces in ((noisy, sphere.faces), (soup_v, soup_f)):
        tri = vertices[faces]
        bary = rng.dirichlet(np.ones(3), len(faces))
        on_surface = np.concatenate(
            [vertices[np.unique(faces)], (tri[:, 0] + tri[:, 1]) / 2, np.einsum("fk,fkd->fd", bary, tri)]
        )
        near = on_surface + rng.normal(0.0, 3.0, on_surface.shape)
        far = rng.normal(0.0, 1.0, (300, 3)) * rng.uniform(100, 5000, (300, 1))
        points = np.concatenate([on_surface, near, far])
        fast = point_surface_distances(points, vertices, faces)
        _, reference, _ = trimesh.proximity.closest_point(
            trimesh.Trimesh(vertices, faces, process=False), points
        )
        # trimesh may return a candidate up to tol.merge (1e-8) worse in squared distance
        np.testing.assert_allclose(fast**2, reference**2, rtol=1e-9, atol=1e-8)
        np.testing.assert_allclose(fast[len(on_surface):], reference[len(on_surface):], rtol=1e-9)
        assert np.abs(fast[: len(on_surface)]).max() < 1e-9
        if len(faces) == len(soup_f):  # small enough for brute force over every triangle
            brute = np.min([point_triangle_distance(points, t) for t in tri], axis=0)
            np.testing.assert_allclose(fast, brute, rtol=1e-9, atol=1e-12)


def test_fast_distances_degenerate_triangles_and_unreferenced_vertices():
    # a collinear triangle (the segment x in [0, 10]), a point-triangle at (20, 20, 20), and an
    # unreferenced vertex next to the queries that must not count
    vertices = np.array([[0, 0, 0], [10, 0, 0], [5, 0, 0], [20, 20, 20], [5, 3, 0.1]], float)
    faces = np.array([[0, 1, 2], [3, 3, 3]])
    points = np.array([[5, 3, 0], [-4, 3, 0], [12, 0, 0], [20, 20, 25], [7, 0, 0]], float)
    np.testing.assert_allclose(
        point_surface_distances(points, vertices, faces), [3, 5, 2, 5, 0], atol=1e-12
    )


def region_scene() -> MeshPair:
    """Prediction: face square 1 mm above the GT face, back square 50 mm up, one straddling triangle.
    GT: face square at z=0 and a non-face square 0.5 mm above the prediction's face square."""
    straddle = (np.array([[0.0, 0, 1], [10, 0, 1], [0, 0, 90]]), np.array([[0, 1, 2]]))
    pred = mesh([square(10, 1.0), square(10, 50.0, offset=(100, 0)), straddle], face=[0, 2], head=[0, 1, 2])
    pred.vertex_masks["face"][-1] = False  # the straddling triangle has only 2 face vertices
    target = mesh([square(40, 0.0, offset=(-15, -15)), square(10, 1.5)], face=[0], head=[0, 1])
    return MeshPair(pred, target)


def test_face_region_restriction():
    pair = region_scene()
    face = HausdorffFace(n_samples=2000).score([pair])
    # only the face square counts, measured against the GT face plane (not the closer non-face square)
    assert face.extras["unaligned"][0] == pytest.approx(1.0, abs=1e-9)
    full = HausdorffFull(n_samples=2000).score([pair])
    assert full.extras["unaligned"][0] > 1.0
    # one alignment, from the whole prediction vs the GT head, serves both metrics
    for key in ("align_shift_mm", "align_rotation_deg"):
        assert face.extras[key][0] == full.extras[key][0]


def test_full_measures_against_the_whole_ground_truth():
    """A perfect prediction of a head whose lower part is neck and whose top is hair (not in the
    ground truth's 'head' mask) scores ~0: the neck and hair of the ground truth count as surface."""
    target = bumpy_head()
    up = target.vertices[:, 1] - target.vertices[:, 1].mean()
    neck, hair = up > 60.0, up < -70.0  # OpenCV y points down
    masks = {"head": ~neck & ~hair, "face": target.vertex_masks["face"] & ~neck & ~hair, "hair": hair}
    target = Mesh(target.vertices, target.faces, masks)
    pred = Mesh(target.vertices.copy(), target.faces.copy(), {k: m.copy() for k, m in masks.items()})
    full = HausdorffFull(n_samples=3000).score([MeshPair(pred, target)])
    assert full.values[0] < 0.05 and full.extras["unaligned"][0] < 0.05
    head_only = Mesh(target.vertices, target.faces[masks["head"][target.faces].all(1)], masks)
    assert HausdorffFull(n_samples=3000).score([MeshPair(pred, head_only)]).values[0] > 1.0


def sphere_mesh(radius: float, head: bool = False) -> Mesh:
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=radius)
    masks = {"head": np.ones(len(sphere.vertices), bool)} if head else {}
    return Mesh(sphere.vertices.copy(), sphere.faces.copy(), masks)


def bumped(m: Mesh, height: float) -> Mesh:
    """``m`` with a smooth bump of ``height`` mm pushed out along +x (no similarity removes it)."""
    v = m.vertices.copy()
    u = (v - v.mean(axis=0)) / np.abs(v - v.mean(axis=0)).max(axis=0)
    v[:, 0] += height * np.clip(u[:, 0] - 0.5, 0.0, None) * 2.0
    return Mesh(v, m.faces.copy(), {k: x.copy() for k, x in m.vertex_masks.items()})


def test_max_within_and_over_frames():
    target = bumpy_head()
    metric = HausdorffFull(n_samples=3000)
    scores = metric.score([MeshPair(bumped(target, 3.0), target), MeshPair(bumped(target, 12.0), target)])
    assert 0.0 < scores.values[0] < scores.values[1]
    assert (scores.extras["max"] >= scores.values).all()
    result = metric.summarize([scores])
    assert result.extra["max"] == pytest.approx(scores.extras["max"].max())
    assert result.value == pytest.approx(scores.values.mean())
    assert (result.n_frames, result.n_skipped, result.spec.unit) == (2, 0, "mm")


def bumpy_head() -> Mesh:
    """An ellipsoid with bumps: no rotational symmetry, so a rigid motion is recoverable."""
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    u = sphere.vertices
    r = 1.0 + 0.15 * np.sin(3 * u[:, 0]) * np.cos(2 * u[:, 1]) + 0.1 * u[:, 2] ** 3
    v = u * r[:, None] * np.array([75.0, 100.0, 90.0]) + np.array([-40.0, 10.0, 1000.0])
    masks = {"head": np.ones(len(v), bool), "face": u[:, 2] < -0.2}
    return Mesh(v, sphere.faces.copy(), masks)


def moved(m: Mesh, rotation: np.ndarray, translation: np.ndarray, scale: float = 1.0) -> Mesh:
    """``m`` turned/scaled about its centroid, then shifted."""
    c = m.vertices.mean(axis=0)
    v = scale * (m.vertices - c) @ rotation.T + c + translation
    return Mesh(v, m.faces.copy(), {k: x.copy() for k, x in m.vertex_masks.items()})


def test_rigidly_moved_copy_aligns_to_zero_and_keeps_the_unaligned_error():
    target = bumpy_head()
    rotation = Rotation.from_euler("xyz", [4.0, -6.0, 3.0], degrees=True).as_matrix()
    translation = np.array([5.0, -3.0, 12.0])
    pred = moved(target, rotation, translation)
    for metric in (HausdorffFull(n_samples=3000), HausdorffFace(n_samples=3000)):
        scores = metric.score([MeshPair(pred, target)])
        assert scores.values[0] < 0.05 and scores.extras["max"][0] < 0.3
        # independent unaligned reference: trimesh's closest point from the same seeded samples
        region = metric.pred_region
        faces = pred.faces if region is None else pred.faces[pred.vertex_masks[region][pred.faces].all(1)]
        gt_region = metric.target_region
        gt_faces = target.faces if gt_region is None else target.faces[target.vertex_masks[gt_region][target.faces].all(1)]
        points, _ = trimesh.sample.sample_surface(
            trimesh.Trimesh(pred.vertices, faces, process=False), 3000, seed=0
        )
        _, reference, _ = trimesh.proximity.closest_point(
            trimesh.Trimesh(target.vertices, gt_faces, process=False), points
        )
        assert scores.extras["unaligned"][0] == pytest.approx(reference.mean(), rel=1e-6)
        assert scores.extras["unaligned"][0] > 5.0
        assert scores.extras["align_rotation_deg"][0] == pytest.approx(
            Rotation.from_matrix(rotation).magnitude() * 180 / np.pi, abs=0.2
        )
        # the centroid of the face samples moves back by the known motion of that point (rotation
        # about the whole mesh's centroid; face-vertex centroid ~ sample centroid within a few mm)
        assert scores.extras["align_shift_mm"][0] == pytest.approx(face_centroid_motion(target, pred), abs=1.5)


def face_centroid_motion(target: Mesh, pred: Mesh) -> float:
    """How far the centroid of the face vertices moved from ``target`` to ``pred`` (mm)."""
    face = target.vertex_masks["face"]
    return float(np.linalg.norm(pred.vertices[face].mean(axis=0) - target.vertices[face].mean(axis=0)))


def test_copy_too_deep_is_recovered_by_the_centroid_start():
    """Monocular depth error: a rigid copy 180 mm further away (identity-start ICP stalls ~55 mm)."""
    target = bumpy_head()
    rotation = Rotation.from_euler("xyz", [5.0, -8.0, 4.0], degrees=True).as_matrix()
    pred = moved(target, rotation, np.array([20.0, -10.0, 180.0]))
    scores = HausdorffFull(n_samples=3000).score([MeshPair(pred, target)])
    assert scores.values[0] < 0.05
    assert scores.extras["unaligned"][0] > 50.0
    assert scores.extras["align_shift_mm"][0] == pytest.approx(face_centroid_motion(target, pred), abs=1.5)


def test_scaled_copy_is_aligned_by_the_similarity():
    """Monocular size error: a copy 10 % larger (and so further away), turned and shifted."""
    target = bumpy_head()
    rotation = Rotation.from_euler("xyz", [3.0, -4.0, 2.0], degrees=True).as_matrix()
    pred = moved(target, rotation, np.array([5.0, -3.0, 100.0]), scale=1.1)
    scores = HausdorffFull(n_samples=3000).score([MeshPair(pred, target)])
    assert scores.values[0] < 0.1
    assert scores.extras["rigid"][0] > 3.0
    assert scores.extras["align_scale"][0] == pytest.approx(1 / 1.1, abs=2e-3)


def test_alignment_scale_is_bounded():
    target = bumpy_head()
    pred = moved(target, np.eye(3), np.zeros(3), scale=3.0)  # e.g. wrong units
    scores = HausdorffFull(n_samples=500).score([MeshPair(pred, target)])
    assert scores.extras["align_scale"][0] == pytest.approx(1 / 1.5, abs=1e-6)
    assert scores.values[0] > 10.0


def test_align_recovers_known_rigid_and_similarity_transforms():
    target = bumpy_head()
    rotation = Rotation.from_euler("xyz", [-5.0, 2.0, 7.0], degrees=True).as_matrix()
    points, _ = trimesh.sample.sample_surface(
        trimesh.Trimesh(target.vertices, target.faces, process=False), 2000, seed=1
    )
    centroid = points.mean(axis=0)  # turned about the head, as a pose error would be
    for scale in (1.0, 0.85):
        moved_points = scale * (points - centroid) @ rotation.T + centroid + np.array([3.0, 8.0, -10.0])
        rigid, similarity = align(moved_points, target.vertices, target.faces)
        back = moved_points @ similarity[:3, :3].T + similarity[:3, 3]
        assert np.abs(back - points).max() < 0.2
        if scale == 1.0:
            back_rigid = moved_points @ rigid[:3, :3].T + rigid[:3, 3]
            assert np.abs(back_rigid - points).max() < 0.2


def test_full_and_face_share_one_alignment_per_frame(monkeypatch):
    """hausdorff_full and hausdorff_face align the same frame once; a changed mesh aligns again."""
    from nha_bench.metrics import geometry

    calls = []
    monkeypatch.setattr(geometry, "_alignments", {})
    monkeypatch.setattr(geometry, "align", lambda *args: calls.append(1) or align(*args))
    target = bumpy_head()
    pred = moved(target, np.eye(3), np.array([2.0, 0.0, 5.0]))
    full = HausdorffFull(n_samples=500).score([MeshPair(pred, target)])
    face = HausdorffFace(n_samples=500).score([MeshPair(pred, target)])
    assert len(calls) == 1
    assert full.extras["align_scale"][0] == face.extras["align_scale"][0]
    HausdorffFull(n_samples=500).score([MeshPair(moved(pred, np.eye(3), np.array([0.0, 1.0, 0.0])), target)])
    assert len(calls) == 2


def drop_masks(m: Mesh) -> Mesh:
    return Mesh(m.vertices, m.faces)


def with_masks(m: Mesh, **masks: np.ndarray) -> Mesh:
    return Mesh(m.vertices, m.faces, masks)


BAD_PAIRS = [
    (lambda p: MeshPair(p.pred, drop_masks(p.target)), HausdorffFull, "ground-truth mesh of batch frame 0 has no 'head'"),
    (lambda p: MeshPair(drop_masks(p.pred), p.target), HausdorffFace, "prediction mesh of batch frame 0 has no 'face'"),
    (lambda p: MeshPair(p.pred, with_masks(p.target, face=np.ones(3, bool))), HausdorffFace, "mask 'face' has shape"),
    (lambda p: MeshPair(Mesh(p.pred.vertices * np.nan, p.pred.faces), p.target), HausdorffFull, "NaN"),
    (lambda p: MeshPair(Mesh(p.pred.vertices, p.pred.faces + 100), p.target), HausdorffFull, "faces index vertex"),
    (lambda p: MeshPair(p.pred, with_masks(p.target, head=np.zeros(len(p.target.vertices), bool))), HausdorffFull, "no triangle"),
]


@pytest.mark.parametrize("make, metric, message", BAD_PAIRS)
def test_hausdorff_bad_input(make, metric, message):
    with pytest.raises(MetricInputError, match=message):
        metric(n_samples=10).score([make(region_scene())])
    with pytest.raises(MetricInputError, match="non-empty list"):
        metric().score([])


def rotated_normals(n: np.ndarray, degrees: float, rng: np.random.Generator) -> np.ndarray:
    """Each normal turned by exactly ``degrees`` towards a random perpendicular direction."""
    u = np.cross(n, rng.standard_normal(n.shape))
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    a = np.radians(degrees)
    return np.cos(a) * n + np.sin(a) * u


def random_unit(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal((*shape, 3))
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_normal_error_known_angles():
    rng = np.random.default_rng(0)
    target = random_unit((2, 16, 16), rng)
    pred = np.stack([rotated_normals(target[0], 30.0, rng), rotated_normals(target[1], 10.0, rng)])
    pred *= rng.uniform(0.5, 3.0, (2, 16, 16, 1))  # not unit length: the metric renormalises
    mask = np.zeros((2, 16, 16), bool)
    mask[:, 4:12, 2:14] = True
    pred[~mask] = np.nan  # outside the mask nothing is read
    metric = NormalError()
    scores = metric.score(NormalBatch(pred.astype(np.float32), target.astype(np.float32), mask))
    np.testing.assert_allclose(scores.values, [30.0, 10.0], atol=1e-3)
    assert metric.summarize([scores]).value == pytest.approx(20.0, abs=1e-3)


def test_normal_error_identical_and_opposite_are_clamped():
    n = random_unit((1, 8, 8), np.random.default_rng(1))
    mask = np.ones((1, 8, 8), bool)
    assert NormalError().score(NormalBatch(n, n.copy(), mask)).values[0] == pytest.approx(0.0, abs=1e-5)
    assert NormalError().score(NormalBatch(-n, n, mask)).values[0] == pytest.approx(180.0, abs=1e-5)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda p, t, m: (p[:, :4], t, m), "prediction has shape"),
        (lambda p, t, m: (p, t, m[:, :4]), "mask is"),
        (lambda p, t, m: (p, t, m.astype(np.uint8)), "expected bool"),
        (lambda p, t, m: (np.where(np.arange(8)[:, None, None] == 3, np.nan, p), t, m), "NaN"),
        (lambda p, t, m: (p, np.where(np.arange(8)[:, None, None] == 3, 0.0, t), m), "zero-length"),
        (lambda p, t, m: (p, t, np.zeros_like(m)), "mask is empty"),
    ],
)
def test_normal_error_bad_input(change, message):
    n = random_unit((1, 8, 8), np.random.default_rng(2))
    with pytest.raises(MetricInputError, match=message):
        NormalError().score(NormalBatch(*change(n, n.copy(), np.ones((1, 8, 8), bool))))
