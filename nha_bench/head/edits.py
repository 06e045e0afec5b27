"""NHA's edits of the head-model topology, generic over head models.

NHA (Sec. 3.1) removes the lower-neck faces, adds faces that close the mouth cavity and
subdivides the mesh once four-way (new vertices at edge midpoints; eyeballs are left as they
are, as in NHA's code). Every edit here returns an :class:`EditedHeadModel`: it evaluates the
base model and maps the base vertices through a fixed sparse matrix (selection for removed
vertices, 1/2-1/2 rows for edge midpoints), so it is again a :class:`HeadModel` with the same
parameters, regions, landmarks and canonical vertices carried over.

Note: NHA's code instead averages the blendshapes and skinning weights of the two edge ends
and skins the midpoint with them. Both agree exactly for the template and every blendshape
(the model is linear there) and to first order under pose; here a midpoint stays exactly on
the straight edge of the posed base mesh.

Vertex count after subdivision: V' = V + E, with E the unique edges of the subdivided faces
(checked against trimesh.remesh.subdivide in tests/test_head_edits.py). For the paper's FLAME
mesh (5023 vertices, 9976 faces -> 16227): the eyeball faces are not subdivided and vertices used
only by removed lower-neck faces disappear, so 16227 = V_kept + E_kept, E_kept counting the
unique edges of the kept non-eyeball faces including the mouth-filling ones. For that head
surface (genus 0, b boundary loops left after closing the mouth: neck cut + two eye openings)
Euler gives E_kept = V_head + F_head + b - 2. The FLAME topology and NHA's lower-neck face list
are not available here, so 16227 itself is not re-derived. ICT with the same edits:
17202 -> 16439 (lower neck removed; its mouth socket already closes the mouth) -> 56272.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from nha_bench.errors import NhaBenchError
from nha_bench.head.base import HeadModel, HeadParams

INNER_LIP_LANDMARKS = list(range(60, 68))  # iBUG inner-lip contour


class EditedHeadModel(HeadModel):
    """``base`` followed by a fixed linear map of its vertices: V' = M @ V_base (M sparse)."""

    def __init__(
        self,
        base: HeadModel,
        matrix: sp.spmatrix,
        faces: np.ndarray,
        regions: dict[str, np.ndarray],
        landmark_faces: np.ndarray,
        landmark_bary: np.ndarray,
        mouth_fill_faces: np.ndarray,
    ):
        super().__init__()
        if isinstance(base, EditedHeadModel):  # compose, keeping one level of wrapping
            matrix = sp.csr_matrix(matrix) @ base.matrix
            base = base.base
        matrix = sp.csr_matrix(matrix)
        self.base = base
        self.matrix = matrix
        self.name = f"{base.name}+edited"
        self.n_shape, self.n_expr = base.n_shape, base.n_expr
        canonical = matrix @ base.canonical_vertices.detach().cpu().double().numpy()
        self._set_topology(faces, canonical, regions, landmark_faces, landmark_bary)
        # padded gather form of the sparse rows (at most k base vertices per new vertex)
        counts = np.diff(matrix.indptr)
        k = max(1, int(counts.max()))
        row = np.repeat(np.arange(matrix.shape[0]), counts)
        slot = np.arange(matrix.nnz) - np.repeat(matrix.indptr[:-1], counts)
        idx = np.zeros((matrix.shape[0], k), dtype=np.int64)
        w = np.zeros((matrix.shape[0], k), dtype=np.float32)
        idx[row, slot], w[row, slot] = matrix.indices, matrix.data
        self.register_buffer("_gather_idx", torch.as_tensor(idx))
        self.register_buffer("_gather_w", torch.as_tensor(w))
        self.register_buffer("mouth_fill_faces", torch.as_tensor(mouth_fill_faces, dtype=torch.bool))

    def lift(self, x: Tensor) -> Tensor:
        """Map per-base-vertex values (..., V_base, C) to this mesh (..., V, C)."""
        return (x[..., self._gather_idx, :] * self._gather_w[..., None]).sum(-2)

    def forward(self, params: HeadParams) -> Tensor:
        """Posed vertices (B, V', 3): the base model's, mapped through the edit matrix."""
        return self.lift(self.base(params))


def _parts(model: HeadModel) -> tuple[sp.csr_matrix, np.ndarray, dict, np.ndarray, np.ndarray, np.ndarray]:
    """The identity edit of ``model`` (matrix, faces, regions, landmarks, mouth faces), numpy."""
    nv = model.n_vertices
    faces = model.faces.cpu().numpy()
    mouth = (model.mouth_fill_faces.cpu().numpy() if isinstance(model, EditedHeadModel)
             else np.zeros(len(faces), dtype=bool))
    regions = {k: m.cpu().numpy() for k, m in model.regions.items()}
    return (sp.identity(nv, format="csr"), faces, regions, model.landmark_faces.cpu().numpy(),
            model.landmark_bary.cpu().numpy(), mouth)


def remove_faces(model: HeadModel, drop: np.ndarray) -> EditedHeadModel:
    """Drop faces (bool (F,)) and every vertex no remaining face uses."""
    _, faces, regions, lf, lb, mouth = _parts(model)
    drop = np.asarray(drop, dtype=bool)
    if len(lf) and drop[lf].any():
        raise NhaBenchError("removing faces that carry landmarks", fix="choose another face set")
    keep_f = ~drop
    used = np.zeros(model.n_vertices, dtype=bool)
    used[faces[keep_f]] = True
    new_id = np.cumsum(used) - 1
    sel = sp.csr_matrix((np.ones(used.sum()), (np.arange(used.sum()), np.flatnonzero(used))),
                        shape=(used.sum(), model.n_vertices))
    face_map = np.cumsum(keep_f) - 1
    return EditedHeadModel(model, sel, new_id[faces[keep_f]], {k: m[used] for k, m in regions.items()},
                           face_map[lf], lb, mouth[keep_f])


def remove_lower_neck(model: HeadModel) -> EditedHeadModel:
    """Remove every face touching the model's ``lower_neck`` region (all but ``head``)."""
    low = model.regions.get("lower_neck", ~model.regions["head"]).cpu().numpy()
    return remove_faces(model, low[model.faces.cpu().numpy()].any(1))


def boundary_loops(faces: np.ndarray) -> list[np.ndarray]:
    """Ordered vertex loops of the mesh boundary (edges used by one face), following face winding."""
    nxt: dict[int, int] = {}
    count: dict[tuple[int, int], int] = defaultdict(int)
    for f in faces:
        for a, b in ((f[0], f[1]), (f[1], f[2]), (f[2], f[0])):
            count[(min(a, b), max(a, b))] += 1
    for f in faces:
        for a, b in ((f[0], f[1]), (f[1], f[2]), (f[2], f[0])):
            if count[(min(a, b), max(a, b))] == 1:
                nxt[int(a)] = int(b)
    loops, seen = [], set()
    for start in nxt:
        if start in seen:
            continue
        loop, v = [], start
        while v not in seen and v in nxt:
            seen.add(v)
            loop.append(v)
            v = nxt[v]
        loops.append(np.array(loop))
    return loops


def _zipper(loop: np.ndarray, pos: np.ndarray) -> list[list[int]]:
    """Fill a loop with a strip between its two halves, split at the extreme-x (mouth corner)
    vertices; each step adds the shorter diagonal. Faces wind against the loop's direction so
    they continue the surrounding surface's orientation."""
    n = len(loop)
    i0, i1 = int(np.argmin(pos[loop, 0])), int(np.argmax(pos[loop, 0]))
    a = [loop[(i0 + t) % n] for t in range((i1 - i0) % n + 1)]  # corner -> corner one way
    b = [loop[(i0 - t) % n] for t in range((i0 - i1) % n + 1)]  # and the other way
    tris, i, j = [], 0, 0
    while i < len(a) - 1 or j < len(b) - 1:
        adv_a = j == len(b) - 1 or (
            i < len(a) - 1 and np.linalg.norm(pos[a[i + 1]] - pos[b[j]]) <= np.linalg.norm(pos[b[j + 1]] - pos[a[i]])
        )
        if adv_a:
            tris.append([a[i], b[j], a[i + 1]])
            i += 1
        else:
            tris.append([a[i], b[j], b[j + 1]])
            j += 1
    # the loop runs a[0] -> a[1] ...; a surrounding face contains the half-edge a[i] -> a[i+1],
    # so the filling face must contain a[i+1] -> a[i]: (a[i], b[j], a[i+1]) has it. Degenerate
    # triangles at the shared corners (a[0] == b[0], a[-1] == b[-1]) are dropped.
    return [t for t in tris if len(set(t)) == 3]


def close_mouth(model: HeadModel, max_distance: float = 0.02) -> EditedHeadModel:
    """Add faces filling the mouth hole: the boundary loop nearest the inner-lip landmarks.

    Models whose mouth cavity is already closed (ICT: the mouth socket surface) have no such
    loop; they come back unchanged (0 added faces).
    """
    m, faces, regions, lf, lb, mouth = _parts(model)
    pos = model.canonical_vertices.detach().cpu().numpy()
    lips = model.landmarks(model.canonical_vertices[None])[0, INNER_LIP_LANDMARKS].detach().cpu().numpy()
    centre = lips.mean(0)
    best, best_d = None, max_distance
    for loop in boundary_loops(faces):
        d = np.linalg.norm(pos[loop].mean(0) - centre)
        if d < best_d and len(loop) >= 3:
            best, best_d = loop, d
    new = np.array(_zipper(best, pos), dtype=np.int64).reshape(-1, 3) if best is not None else np.zeros((0, 3), np.int64)
    return EditedHeadModel(model, m, np.concatenate([faces, new]), regions, lf, lb,
                           np.concatenate([mouth, np.ones(len(new), dtype=bool)]))


def subdivide(model: HeadModel, exclude: tuple[str, ...] = ("eyes",)) -> EditedHeadModel:
    """One four-way subdivision of every face except those whose vertices all lie in ``exclude``
    regions (NHA keeps the eyeballs as they are)."""
    _, faces, regions, lf, lb, mouth = _parts(model)
    nv = model.n_vertices
    skip = np.zeros(nv, dtype=bool)
    for name in exclude:
        skip |= regions[name]
    sub = ~skip[faces].all(1)
    f = faces[sub]
    e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    edges, inv = np.unique(e, axis=0, return_inverse=True)
    inv = inv.reshape(3, -1).T + nv  # midpoint vertex id of edges (01, 12, 20) of each face
    n_e = len(edges)
    rows = np.r_[np.arange(nv), np.repeat(np.arange(nv, nv + n_e), 2)]
    cols = np.r_[np.arange(nv), edges.ravel()]
    vals = np.r_[np.ones(nv), np.full(2 * n_e, 0.5)]
    mat = sp.csr_matrix((vals, (rows, cols)), shape=(nv + n_e, nv))
    a, b, c = f.T
    mab, mbc, mca = inv.T
    children = np.stack([np.c_[a, mab, mca], np.c_[mab, b, mbc], np.c_[mca, mbc, c], np.c_[mab, mbc, mca]], 1)
    new_faces = np.concatenate([faces[~sub], children.reshape(-1, 3)])
    # a midpoint joins a region when both edge ends are in it (NHA's rule); the midpoints of edges
    # inside the mouth filling (all adjacent faces are filling faces) form the "mouth" region
    new_regions = {k: np.r_[r, r[edges[:, 0]] & r[edges[:, 1]]] for k, r in regions.items()}
    edge_faces = sp.csr_matrix((np.ones(3 * len(f)), (inv.T.ravel() - nv, np.tile(np.arange(len(f)), 3))),
                               shape=(n_e, len(f)))
    fill = mouth[sub]
    inside = (edge_faces @ (~fill).astype(float)) == 0
    new_regions["mouth"] = new_regions["mouth"] | np.r_[np.zeros(nv, bool), inside]
    new_mouth = np.r_[mouth[~sub], np.repeat(fill, 4)]
    # landmarks: the child face holding the point, barycentrics rescaled (exact)
    sub_pos = np.cumsum(sub) - 1
    keep_pos = np.cumsum(~sub) - 1
    n_keep = int((~sub).sum())
    new_lf, new_lb = np.empty_like(lf), np.empty_like(lb)
    for i, (fi, w) in enumerate(zip(lf, lb)):
        if not sub[fi]:
            new_lf[i], new_lb[i] = keep_pos[fi], w
            continue
        base_child = n_keep + 4 * sub_pos[fi]
        w0, w1, w2 = w
        if w0 >= 0.5:
            new_lf[i], new_lb[i] = base_child, (2 * w0 - 1, 2 * w1, 2 * w2)
        elif w1 >= 0.5:
            new_lf[i], new_lb[i] = base_child + 1, (2 * w0, 2 * w1 - 1, 2 * w2)
        elif w2 >= 0.5:
            new_lf[i], new_lb[i] = base_child + 2, (2 * w0, 2 * w1, 2 * w2 - 1)
        else:
            new_lf[i], new_lb[i] = base_child + 3, (1 - 2 * w2, 1 - 2 * w0, 1 - 2 * w1)
    return EditedHeadModel(model, mat, new_faces, new_regions, new_lf, new_lb, new_mouth)


def nha_topology(model: HeadModel) -> EditedHeadModel:
    """NHA's mesh: lower neck removed, mouth closed, then one four-way subdivision (eyes kept)."""
    return subdivide(close_mouth(remove_lower_neck(model)))
