"""OpenCV pinhole projection: camera x right, y down, z forward; pixel centres at integer + 0.5."""

from __future__ import annotations

import torch

from nha_bench.render.checks import check_K, check_verts


def project_unchecked(verts_cam: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """(B, V, 3) camera points, (B, 3, 3) K -> (B, V, 2) pixel coordinates (no validation)."""
    z = verts_cam[..., 2:3]
    z = torch.where(z.abs() < 1e-12, 1e-12, z)  # a vertex at z = 0 would turn zero gradients into NaN
    xy = verts_cam[..., :2] / z
    # elementwise rather than a batched matmul: cheaper for (B, V, 2) x (2, 2) on GPU
    return (xy.unsqueeze(-2) * K[:, None, :2, :2]).sum(-1) + K[:, None, :2, 2]


def project(verts_cam: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Project camera-space points (B, V, 3) with intrinsics K (B, 3, 3) or (3, 3) to pixels (B, V, 2).

    u = fx * x / z + s * y / z + cx, v = fy * y / z + cy (OpenCV). Points at z <= 0 give
    meaningless coordinates; the rasterizer drops triangles behind its near plane.
    """
    verts_cam = check_verts(verts_cam, finite=False)
    K = check_K(K, verts_cam.shape[0], verts_cam, verts_arg="verts_cam")
    return project_unchecked(verts_cam, K)
