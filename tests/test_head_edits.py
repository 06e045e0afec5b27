"""NHA's mesh edits: subdivision vs trimesh, lower-neck removal, mouth closing, carried attributes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh
import trimesh.remesh
from scipy.spatial import cKDTree

from nha_bench.head import HeadParams, evaluation_surface, load_head_model
from nha_bench.head.base import HeadModel, embed_vertices_as_landmarks, scored_face_mask
from nha_bench.head.face_outline import BROW_RAISE, landmark_outline_mask
from nha_bench.head.edits import (
    EditedHeadModel, boundary_loops, close_mouth, nha_topology, remove_lower_neck, subdivide,
)


class ToyHead(HeadModel):
    """A sphere 'head' with a mouth hole in front, linear in shape/expr, rigid global rotation."""

    name = "toy"

    def __init__(self, mouth_hole: bool = True):
        super().__init__()
        s = trimesh.creation.icosphere(subdivisions=3, radius=0.1)
        v, f = np.array(s.vertices), np.array(s.faces)
        centroid = v[f].mean(1)
        mouth = (centroid[:, 2] > 0.08) & (np.abs(centroid[:, 0]) < 0.03) & (np.abs(centroid[:, 1] + 0.03) < 0.012)
        if mouth_hole:
            f = f[~mouth]
        used = np.unique(f)
        remap = -np.ones(len(v), int)
        remap[used] = np.arange(len(used))
        v, f = v[used], remap[f]
        self.n_shape, self.n_expr = 4, 2
        rng = np.random.default_rng(0)
        self.register_buffer("dirs", torch.tensor(rng.normal(scale=1e-3, size=(6, len(v), 3)), dtype=torch.float32))
        loops = boundary_loops(f)
        lip_v = loops[0] if loops else np.argsort(np.linalg.norm(v - [0, -0.03, 0.1], axis=1))[:8]
        front = np.flatnonzero(v[:, 2] > 0.05)
        lmk_v = np.r_[front[np.arange(60) % len(front)], lip_v[np.linspace(0, len(lip_v) - 1, 8).astype(int)]]
        lf, lb = embed_vertices_as_landmarks(f, lmk_v)
        regions = dict(face=v[:, 2] > 0.03, scalp=v[:, 2] <= 0.03, ears=np.zeros(len(v), bool),
                       eyes=np.zeros(len(v), bool), neck=v[:, 1] < -0.07, mouth=np.zeros(len(v), bool),
                       lower_neck=v[:, 1] < -0.09, head=v[:, 1] >= -0.09)
        self._set_topology(f, v, regions, lf, lb)

    def forward(self, params: HeadParams) -> torch.Tensor:
        coeff = torch.cat([params.shape, params.expr], 1)
        v = self.canonical_vertices + torch.einsum("bk,kvc->bvc", coeff, self.dirs)
        from nha_bench.head.lbs import axis_angle_to_matrix

        return v @ axis_angle_to_matrix(params.pose[:, :3]).transpose(1, 2) + params.translation[:, None]


def _same_point_sets(a: np.ndarray, b: np.ndarray, tol: float = 1e-7) -> bool:
    """Equal sizes and every point of each set within tol of a point of the other."""
    da, _ = cKDTree(b).query(a)
    db, _ = cKDTree(a).query(b)
    return len(a) == len(b) and da.max() < tol and db.max() < tol


@pytest.mark.parametrize("hole", [False, True])
def test_subdivision_matches_trimesh_and_v_plus_e(hole):
    toy = ToyHead(mouth_hole=hole)
    v, f = toy.canonical_vertices.numpy().astype(np.float64), toy.faces.numpy()
    sub = subdivide(toy, exclude=())
    tm = trimesh.Trimesh(v, f, process=False)
    assert sub.n_vertices == len(v) + len(tm.edges_unique)
    assert len(sub.faces) == 4 * len(f)
    tv, tf = trimesh.remesh.subdivide(v, f)
    assert _same_point_sets(sub.canonical_vertices.double().numpy(), tv)
    # posed: midpoints of the posed base mesh (the model is linear per vertex before skinning)
    p = HeadParams.zeros(toy, 1)
    p.shape.normal_()
    p.pose[0, :3] = torch.tensor([0.1, 0.5, -0.2])
    vb = toy(p)[0].double().numpy()
    tv2, _ = trimesh.remesh.subdivide(vb, f)
    assert _same_point_sets(sub(p)[0].double().numpy(), tv2, tol=1e-6)
    out = trimesh.Trimesh(sub.canonical_vertices.numpy(), sub.faces.numpy(), process=False)
    assert out.is_winding_consistent and out.is_watertight == (not hole)


def test_landmarks_and_regions_carry_over_exactly():
    toy = ToyHead()
    sub = subdivide(toy, exclude=())
    p = HeadParams.zeros(toy, 2)
    p.expr.normal_()
    p.pose[:, :3] = 0.3
    torch.testing.assert_close(sub.landmarks(sub(p)), toy.landmarks(toy(p)), atol=1e-7, rtol=0)
    nb = toy.n_vertices
    edges = sub.matrix[nb:].tocsr()
    ends = edges.indices.reshape(-1, 2)
    for k, r in toy.regions.items():
        r = r.numpy()
        new = sub.regions[k].numpy()
        assert (new[:nb] == r).all()
        if k != "mouth":
            assert (new[nb:] == (r[ends[:, 0]] & r[ends[:, 1]])).all(), k
    # gradients reach the parameters through the edit
    p.shape.requires_grad_(True)
    sub(p).sum().backward()
    assert p.shape.grad.abs().sum() > 0


def test_close_mouth_fills_the_lip_hole_consistently():
    toy = ToyHead()
    f = toy.faces.numpy()
    loops = boundary_loops(f)
    assert len(loops) == 1
    closed = close_mouth(toy)
    assert len(closed.faces) == len(f) + len(loops[0]) - 2
    assert closed.n_vertices == toy.n_vertices
    tm = trimesh.Trimesh(closed.canonical_vertices.numpy(), closed.faces.numpy(), process=False)
    assert tm.is_watertight and tm.is_winding_consistent and tm.volume > 0
    assert boundary_loops(closed.faces.numpy()) == []
    # after subdivision the inner diagonals' midpoints form the "mouth" region, inside the hole
    sub = subdivide(closed, exclude=())
    mouth = sub.regions["mouth"].numpy()
    n_inner_edges = len(loops[0]) - 3
    assert mouth.sum() == n_inner_edges
    pos = sub.canonical_vertices.numpy()[mouth]
    assert (pos[:, 2] > 0.08).all() and (np.abs(pos[:, 1] + 0.03) < 0.02).all()
    # a mesh without a mouth hole is returned unchanged
    assert len(close_mouth(ToyHead(mouth_hole=False)).faces) == len(ToyHead(mouth_hole=False).faces)


def test_remove_lower_neck_drops_faces_and_unused_vertices():
    toy = ToyHead()
    cut = remove_lower_neck(toy)
    low = toy.regions["lower_neck"].numpy()
    f = toy.faces.numpy()
    kept = ~low[f].any(1)
    assert len(cut.faces) == kept.sum()
    assert cut.n_vertices == len(np.unique(f[kept]))
    assert not cut.regions["lower_neck"].any() and cut.regions["head"].all()
    p = HeadParams.zeros(toy, 1)
    p.shape.normal_()
    vb, vc = toy(p)[0], cut(p)[0]
    # every kept vertex is a base vertex, unchanged
    d = (vc[:, None] - vb[None]).norm(dim=-1).min(1).values
    assert d.max() < 1e-7


def test_composed_edits_keep_one_wrapper_and_count_v_plus_e():
    toy = ToyHead()
    nha = nha_topology(toy)
    assert isinstance(nha, EditedHeadModel) and not isinstance(nha.base, EditedHeadModel)
    mid = close_mouth(remove_lower_neck(toy))
    fm = mid.faces.numpy()
    tm = trimesh.Trimesh(mid.canonical_vertices.numpy(), fm, process=False)
    assert nha.n_vertices == mid.n_vertices + len(tm.edges_unique)


def test_ict_nha_topology_counts():
    """ICT: V' = V_kept + E(faces outside the eyeballs), E from trimesh; landmarks unchanged."""
    m = load_head_model("ict")
    cut = remove_lower_neck(m)
    nha = nha_topology(m)
    f = cut.faces.numpy()
    eyes = cut.regions["eyes"].numpy()
    body = f[~eyes[f].all(1)]
    e = trimesh.Trimesh(cut.canonical_vertices.numpy(), body, process=False).edges_unique
    assert nha.n_vertices == cut.n_vertices + len(e)
    assert nha.regions["eyes"].sum() == m.regions["eyes"].sum()  # eyeballs not subdivided
    torch.testing.assert_close(nha.landmarks(nha.canonical_vertices[None]),
                               m.landmarks(m.canonical_vertices[None]), atol=1e-7, rtol=0)


def test_evaluation_surface_drops_the_mouth_socket_only():
    """The scored surface of ICT and of NHA's topology: every face of the head outside the mouth
    socket, re-indexed onto the vertices it uses."""
    for model in (load_head_model("ict"), nha_topology(load_head_model("ict"))):
        kept, faces, masks = evaluation_surface(model)
        head, mouth = model.regions["head"].numpy(), model.regions["mouth"].numpy()
        all_faces = model.faces.numpy()
        expected = all_faces[(head & ~mouth)[all_faces].all(1)]
        assert mouth.any() and not mouth[kept].any() and head[kept].all()
        np.testing.assert_array_equal(kept[faces], expected)
        np.testing.assert_array_equal(masks["face"], scored_face_mask(model)[kept])
        assert masks["head"].all() and len(masks["head"]) == len(kept)


def test_scored_face_is_the_face_region_inside_the_ground_truths_landmark_outline():
    """The head models' scored face is their face region where the rule the synthetic ground
    truth's face was drawn by holds: inside the jaw line and the raised brows, in front of the jaw
    angles; no eyeballs, no scalp."""
    for model in (load_head_model("ict"), nha_topology(load_head_model("ict"))):
        face = scored_face_mask(model)
        canonical = model.canonical_vertices.numpy()
        lm = model.landmarks(model.canonical_vertices[None])[0].numpy()
        assert not (face & model.regions["eyes"].numpy()).any() and not (face & ~model.regions["face"].numpy()).any()
        assert face.sum() > 0.9 * model.regions["face"].numpy()[model.regions["head"].numpy()].sum()
        assert (canonical[face, 2] > min(lm[0, 2], lm[16, 2])).all()
        top = lm[17:27, 1].max() + BROW_RAISE * (lm[19, 1] - lm[8, 1])
        assert canonical[face, 1].max() <= top and canonical[face, 1].min() >= lm[8, 1] - 1e-9
        nose_tip = np.argmin(np.linalg.norm(canonical - lm[30], axis=1))
        assert face[nose_tip] and not face[model.regions["scalp"].numpy()].any()
    # the rule itself on a flat grid: the outline's convex hull, with the brows raised
    lm = np.zeros((68, 3))
    lm[0:17, 0], lm[0:17, 1] = np.linspace(-1, 1, 17), -np.sin(np.linspace(0, np.pi, 17))  # jaw line
    lm[17:27, 0], lm[17:27, 1] = np.linspace(-0.8, 0.8, 10), 0.5
    lm[8, 1], lm[19, 1] = -1.0, 0.5
    grid = np.array([[x, y, 1.0] for x in (-0.5, 0.0, 0.5) for y in (-1.5, 0.0, 0.9, 1.2)])
    inside = landmark_outline_mask(grid, lm)  # brows at 0.5 raised by 0.4 x 1.5 to 1.1
    assert inside.reshape(3, 4).tolist() == [[False, True, True, False]] * 3
    assert not landmark_outline_mask(grid * [1, 1, -1], lm).any()  # behind the jaw angles (z 0)
