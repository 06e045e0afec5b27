"""Rasterization with differentiable barycentrics and depth, and attribute interpolation.

The nearest face per pixel is found without gradients (Triton kernel on CUDA, PyTorch otherwise);
barycentrics and depth are then recomputed from that face index and the vertices with autograd, so
gradients reach the vertices through ``bary``, ``depth`` and ``interpolate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from nha_bench.render.camera import project_unchecked
from nha_bench.render.checks import RenderInputError, check_faces, check_K, check_size, check_verts
from nha_bench.render.raster_torch import visibility_torch
from nha_bench.render.setup import setup_faces

DEFAULT_ZNEAR = 1e-3


@dataclass
class Fragments:
    """Per-pixel rasterization result.

    face_idx: (B, H, W) int64, -1 on background. bary: (B, H, W, 3) perspective-correct barycentrics,
    0 on background. depth: (B, H, W) camera-space z, 0 on background. ``pix`` and ``bary_packed``
    hold the foreground pixels' flat indices (into B*H*W) and their barycentrics, reused by
    :func:`interpolate` to avoid a second search.
    """

    face_idx: torch.Tensor
    bary: torch.Tensor
    depth: torch.Tensor
    pix: torch.Tensor | None = field(default=None, repr=False)
    bary_packed: torch.Tensor | None = field(default=None, repr=False)

    @property
    def mask(self) -> torch.Tensor:
        """(B, H, W) bool, True where a face covers the pixel."""
        return self.face_idx >= 0


def visibility(setup, height: int, width: int, backend: str) -> torch.Tensor:
    """Dispatch the visibility search: 'auto' uses Triton on CUDA when available, else PyTorch."""
    if backend not in ("auto", "torch", "triton"):
        raise RenderInputError(f"renderer argument `backend`: unknown {backend!r}", fix="use 'auto', 'torch' or 'triton'")
    if backend == "torch" or (backend == "auto" and not setup.coef.is_cuda):
        return visibility_torch(setup, height, width)
    from nha_bench.render.raster_triton import triton_available, visibility_triton

    if backend == "triton" or triton_available():
        return visibility_triton(setup, height, width)
    return visibility_torch(setup, height, width)


def rasterize(
    verts_cam: torch.Tensor,
    faces: torch.Tensor,
    K: torch.Tensor,
    height: int,
    width: int,
    znear: float = DEFAULT_ZNEAR,
    cull_backfaces: bool = False,
    backend: str = "auto",
) -> Fragments:
    """Rasterize camera-space triangles with a z-buffer (nearest face per pixel centre).

    verts_cam (B, V, 3) in the OpenCV camera frame (z forward), faces (F, 3), K (B, 3, 3) or (3, 3).
    Triangles with any vertex at z <= ``znear`` are dropped (no clipping). No backface culling
    unless ``cull_backfaces``: then faces whose normal (v1-v0)x(v2-v0) points away from the camera
    are dropped (counter-clockwise winding seen from outside = front, trimesh's convention).
    Pixel centres on a shared edge go to the nearer face, ties to the lower face index.
    """
    verts_cam = check_verts(verts_cam)
    faces = check_faces(faces, verts_cam.shape[1], verts_cam.device)
    K = check_K(K, verts_cam.shape[0], verts_cam)
    check_size(height, width)
    B = verts_cam.shape[0]
    setup = setup_faces(verts_cam, faces, K, height, width, znear, cull_backfaces)
    face_idx = visibility(setup, height, width, backend)

    flat = face_idx.view(-1)
    pix = torch.nonzero(flat >= 0).squeeze(1)
    f = flat[pix]
    b = torch.div(pix, height * width, rounding_mode="floor")
    rem = pix - b * (height * width)
    y = torch.div(rem, width, rounding_mode="floor")
    x = rem - y * width
    bary_p, depth_p = _bary_depth(verts_cam, faces, K, b, f, x, y)

    dt = verts_cam.dtype
    bary = torch.zeros(B * height * width, 3, dtype=dt, device=verts_cam.device).index_put((pix,), bary_p)
    depth = torch.zeros(B * height * width, dtype=dt, device=verts_cam.device).index_put((pix,), depth_p)
    return Fragments(face_idx, bary.view(B, height, width, 3), depth.view(B, height, width), pix, bary_p)


def _bary_depth(verts_cam, faces, K, b, f, x, y):
    """Differentiable perspective-correct barycentrics (N, 3) and depth (N,) at pixel centres."""
    uv = project_unchecked(verts_cam, K)  # (B, V, 2)
    vid = faces[f]  # (N, 3)
    p = uv[b[:, None], vid]  # (N, 3, 2)
    z = verts_cam[b[:, None], vid, 2]  # (N, 3)
    px = x.to(p.dtype) + 0.5
    py = y.to(p.dtype) + 0.5
    dx = p[..., 0] - px[:, None]  # vertex minus pixel
    dy = p[..., 1] - py[:, None]
    # screen barycentric of vertex i ~ cross(p_{i+1} - q, p_{i+2} - q); their sum is the signed area
    cr = dx.roll(-1, 1) * dy.roll(-2, 1) - dy.roll(-1, 1) * dx.roll(-2, 1)
    w = cr / cr.sum(1, keepdim=True)
    q = w / z
    s = q.sum(1, keepdim=True)
    return q / s, 1.0 / s.squeeze(1)


def interpolate(attr: torch.Tensor, faces: torch.Tensor, fragments: Fragments) -> torch.Tensor:
    """Interpolate per-vertex ``attr`` (B, V, C) or (V, C) with the fragments' barycentrics -> (B, H, W, C).

    Background pixels get 0. Differentiable w.r.t. ``attr`` and (through the barycentrics) vertices.
    """
    B, H, W = fragments.face_idx.shape
    if not isinstance(attr, torch.Tensor) or attr.dim() not in (2, 3) or (attr.dim() == 3 and attr.shape[0] not in (1, B)):
        shape = tuple(attr.shape) if isinstance(attr, torch.Tensor) else type(attr).__name__
        raise RenderInputError(
            f"renderer argument `attr`: expected (B, V, C) with B={B} or (V, C), got {shape}",
            fix="pass one attribute row per vertex",
        )
    if not attr.is_floating_point():
        raise RenderInputError(f"renderer argument `attr`: expected floating point, got {attr.dtype}", fix="convert with .float()")
    faces = check_faces(faces, attr.shape[-2], fragments.face_idx.device)
    pix, bary = fragments.pix, fragments.bary_packed
    if pix is None:
        pix = torch.nonzero(fragments.face_idx.view(-1) >= 0).squeeze(1)
        bary = fragments.bary.reshape(-1, 3)[pix]
    vid = faces[fragments.face_idx.view(-1)[pix]]  # (N, 3)
    if attr.dim() == 2 or attr.shape[0] == 1:
        vals = attr.reshape(attr.shape[-2], attr.shape[-1])[vid]
    else:
        b = torch.div(pix, H * W, rounding_mode="floor")
        vals = attr[b[:, None], vid]
    dt = torch.promote_types(attr.dtype, bary.dtype)
    out_p = torch.einsum("nk,nkc->nc", bary.to(dt), vals.to(dt))
    out = torch.zeros(B * H * W, attr.shape[-1], dtype=dt, device=attr.device).index_put((pix,), out_p)
    return out.view(B, H, W, attr.shape[-1])
