"""Per-vertex normals from a triangle mesh."""

from __future__ import annotations

import torch

from nha_bench.render.checks import check_faces, check_verts


def vertex_normals(verts: torch.Tensor, faces: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Unit vertex normals (B, V, 3) (or (V, 3) for (V, 3) input): area-weighted sum of face normals.

    Face normal = (v1 - v0) x (v2 - v0), so counter-clockwise faces seen from outside point out.
    Vertices used by no face get a zero normal. Differentiable w.r.t. ``verts``.
    """
    unbatched = isinstance(verts, torch.Tensor) and verts.dim() == 2
    verts = check_verts(verts, "verts")
    faces = check_faces(faces, verts.shape[1], verts.device)
    B, F = verts.shape[0], faces.shape[0]
    flat = faces.reshape(-1)
    tri = verts.index_select(1, flat).view(B, F, 3, 3)
    fn = torch.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0], dim=-1)
    vn = torch.zeros_like(verts).index_add(1, flat, fn.unsqueeze(2).expand(B, F, 3, 3).reshape(B, 3 * F, 3))
    vn = vn / vn.norm(dim=-1, keepdim=True).clamp(min=eps)
    return vn[0] if unbatched else vn
