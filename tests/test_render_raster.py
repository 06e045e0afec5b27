"""Rasterizer visibility, depth and barycentrics against hand-made scenes and a brute-force ray caster."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nha_bench.render import interpolate, project, rasterize


def brute_force(verts: np.ndarray, faces: np.ndarray, K: np.ndarray, H: int, W: int, znear: float = 1e-3):
    """Per-pixel Moller-Trumbore ray casting in float64.

    Returns face (H, W) (-1 background), depth, bary (H, W, 3), and a robustness flag per pixel:
    True where the winner is > 1e-4 (in barycentric units) inside its triangle and > 1e-4 nearer
    (relative) than any other hit, or every triangle misses the pixel by > 1e-4.
    """
    ys, xs = np.mgrid[0:H, 0:W]
    pix = np.stack([xs + 0.5, ys + 0.5, np.ones_like(xs, dtype=float)], -1).reshape(-1, 3)
    d = pix @ np.linalg.inv(K).T  # rays with z = 1, so the hit parameter t is the depth
    n = d.shape[0]
    best = np.full(n, np.inf)
    second = np.full(n, np.inf)
    face = np.full(n, -1)
    bary = np.zeros((n, 3))
    margin = np.full(n, -np.inf)  # min barycentric of the winner, or of the nearest miss
    for fi, (a, b, c) in enumerate(faces):
        v0, v1, v2 = verts[a], verts[b], verts[c]
        if min(v0[2], v1[2], v2[2]) <= znear:
            continue
        e1, e2 = v1 - v0, v2 - v0
        p = np.cross(d, e2)
        det = p @ e1
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = 1.0 / det
            tv = -v0
            u = (p @ tv) * inv
            q = np.cross(tv, e1)
            v = (d @ q) * inv
            t = (q @ e2) * inv
        bw = np.stack([1 - u - v, u, v], -1)
        mb = bw.min(-1)
        hit = (mb >= 0) & (t > 0) & np.isfinite(t)
        nearer = hit & (t < best)
        second = np.where(nearer, best, np.where(hit, np.minimum(second, t), second))
        best = np.where(nearer, t, best)
        face = np.where(nearer, fi, face)
        bary = np.where(nearer[:, None], bw, bary)
        margin = np.where(nearer, mb, np.where(face < 0, np.maximum(margin, np.where(t > 0, mb, -np.inf)), margin))
    fg = face >= 0
    with np.errstate(invalid="ignore"):
        robust = np.where(fg, (margin > 1e-4) & (second - best > 1e-4 * best), margin < -1e-4)
    depth = np.where(fg, best, 0.0)
    n_hits = np.isfinite(best).astype(int) + np.isfinite(second)
    return face.reshape(H, W), depth.reshape(H, W), bary.reshape(H, W, 3), robust.reshape(H, W), n_hits.reshape(H, W)


def random_scene(seed: int, n_faces: int = 24, behind: int = 3):
    """Random overlapping triangles in front of the camera, plus some crossing the near plane."""
    g = np.random.default_rng(seed)
    centre = np.stack([g.uniform(-0.6, 0.6, n_faces), g.uniform(-0.5, 0.5, n_faces), g.uniform(2, 5, n_faces)], -1)
    centre[:, :2] *= centre[:, 2:]
    verts = (centre[:, None, :] + g.normal(0, 0.6, (n_faces, 3, 3))).reshape(-1, 3)
    verts[: 3 * behind : 3, 2] = g.uniform(-1.0, 0.0005, behind)  # one vertex behind the near plane
    faces = np.arange(3 * n_faces).reshape(n_faces, 3)
    K = np.array([[28.0, 0, 21.3], [0, 31.0, 14.7], [0, 0, 1]])
    return verts, faces, K


@pytest.mark.parametrize("seed", range(6))
def test_matches_brute_force_on_random_overlapping_triangles(seed):
    verts, faces, K, H, W = *random_scene(seed), 30, 40
    ref_face, ref_depth, ref_bary, robust, n_hits = brute_force(verts, faces, K, H, W)
    fr = rasterize(torch.tensor(verts)[None], torch.tensor(faces), torch.tensor(K), H, W)
    face = fr.face_idx[0].numpy()
    # the comparison is not vacuous: many robust foreground pixels, some where triangles overlap
    assert robust.mean() > 0.9 and (robust & (ref_face >= 0)).sum() > 50 and (robust & (n_hits > 1)).sum() > 10
    assert (face[robust] == ref_face[robust]).all()
    same = (face == ref_face) & (face >= 0)
    np.testing.assert_allclose(fr.depth[0].numpy()[same], ref_depth[same], rtol=1e-6)
    np.testing.assert_allclose(fr.bary[0].numpy()[same], ref_bary[same], atol=1e-6)
    assert (fr.depth[0].numpy()[face < 0] == 0).all() and (fr.bary[0].numpy()[face < 0] == 0).all()
    assert not np.isin(face, np.arange(3)).any()  # triangles crossing the near plane are dropped


def test_batch_items_are_independent():
    scenes = [random_scene(s) for s in (10, 11)]
    verts = torch.tensor(np.stack([s[0] for s in scenes]))
    fr = rasterize(verts, torch.tensor(scenes[0][1]), torch.tensor(scenes[0][2]), 20, 24)
    for b in range(2):
        one = rasterize(verts[b : b + 1], torch.tensor(scenes[0][1]), torch.tensor(scenes[0][2]), 20, 24)
        assert torch.equal(one.face_idx[0], fr.face_idx[b])


def square_scene(tilt: float = 0.0):
    """A square x, y in [-1, 1] on the plane z = 2 + tilt * x, fx = fy = 10, cx = cy = 8."""
    verts = torch.tensor([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], dtype=torch.float64)
    verts[:, 2] = 2.0 + tilt * verts[:, 0]
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    K = torch.tensor([[10.0, 0, 8], [0, 10.0, 8], [0, 0, 1]], dtype=torch.float64)
    return verts, faces, K


def test_hand_made_square_coverage_and_depth():
    verts, faces, K = square_scene()
    fr = rasterize(verts[None], faces, K, 16, 16)
    # the square projects to u, v in [3, 13]: pixel centres c + 0.5 inside for c = 3..12
    expect = torch.zeros(16, 16, dtype=torch.bool)
    expect[3:13, 3:13] = True
    assert torch.equal(fr.mask[0], expect)
    assert torch.allclose(fr.depth[0][expect], torch.full((100,), 2.0, dtype=torch.float64))
    assert torch.allclose(project(verts[None], K)[0, 0], torch.tensor([3.0, 3.0], dtype=torch.float64))


def test_perspective_correct_depth_and_interpolation_on_tilted_plane():
    verts, faces, K = square_scene(tilt=0.5)
    fr = rasterize(verts[None], faces, K, 16, 16)
    ys, xs = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    dx = (xs + 0.5 - 8) / 10  # ray x per unit depth
    z = 2.0 / (1 - 0.5 * dx)  # intersection of the ray with z = 2 + 0.5 x
    m = fr.mask[0]
    assert m.sum() > 60
    torch.testing.assert_close(fr.depth[0][m], z.double()[m])
    world_x = interpolate(verts[:, :1], faces, fr)[0, ..., 0]  # attribute = vertex x coordinate
    torch.testing.assert_close(world_x[m], (z * dx).double()[m])


def test_overlap_nearest_wins_and_ties_go_to_lower_index():
    near = torch.tensor([[-1, -1, 2.0], [1, -1, 2.0], [0, 1, 2.0]], dtype=torch.float64)
    far = near.clone()
    far[:, 2] = 3.0
    K = torch.tensor([[8.0, 0, 8], [0, 8.0, 8], [0, 0, 1]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    fr = rasterize(torch.cat([far, near])[None], faces, K, 16, 16)  # far face first
    assert (fr.face_idx[fr.mask] == 1).all() and fr.mask.sum() > 20
    fr = rasterize(torch.cat([near, near])[None], faces, K, 16, 16)  # coplanar duplicate
    assert (fr.face_idx[fr.mask] == 0).all()


def test_backface_culling_flag():
    verts, faces, K = square_scene()
    # seen from the camera (z forward, y down) faces (0,1,2),(0,2,3) have normals along +z: back faces
    assert rasterize(verts[None], faces, K, 16, 16).mask.any()
    assert not rasterize(verts[None], faces, K, 16, 16, cull_backfaces=True).mask.any()
    assert rasterize(verts[None], faces.flip(1), K, 16, 16, cull_backfaces=True).mask.sum() == 100
