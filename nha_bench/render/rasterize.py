"""Rasterization with differentiable barycentrics and depth, and attribute interpolation.

The nearest face per pixel is found without gradients (Triton kernel on CUDA, PyTorch otherwise);
barycentrics and depth are then recomputed from that face index and the vertices with autograd, so
gradients reach the vertices through ``bary``, ``depth`` and ``interpolate``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch

from nha_bench.render.camera import project_unchecked
from nha_bench.render.checks import RenderInputError, check_faces, check_K, check_size, check_verts
from nha_bench.render.raster_torch import visibility_torch
from nha_bench.render.setup import setup_faces

DEFAULT_ZNEAR = 1e-3
_TRITON_FAILED = False  # set when the Triton kernel failed once on this machine


@dataclass
class Fragments:
    """Per-pixel rasterization result.

    face_idx: (B, H, W) int64, -1 on background. bary: (B, H, W, 3) perspective-correct barycentrics,
    0 on background. depth: (B, H, W) camera-space z, 0 on background. ``pix``, ``pix_face`` and
    ``bary_packed`` hold the foreground pixels' flat indices (into B*H*W), their faces as
    b * F + f, and their barycentrics, reused by :func:`interpolate`.
    """

    face_idx: torch.Tensor
    bary: torch.Tensor
    depth: torch.Tensor
    pix: torch.Tensor | None = field(default=None, repr=False)
    pix_face: torch.Tensor | None = field(default=None, repr=False)
    bary_packed: torch.Tensor | None = field(default=None, repr=False)

    @property
    def mask(self) -> torch.Tensor:
        """(B, H, W) bool, True where a face covers the pixel."""
        return self.face_idx >= 0


def visibility(setup, height: int, width: int, backend: str) -> torch.Tensor:
    """Dispatch the visibility search: 'auto' uses Triton on CUDA when it works, else PyTorch."""
    global _TRITON_FAILED
    if backend not in ("auto", "torch", "triton"):
        raise RenderInputError(f"renderer argument `backend`: unknown {backend!r}", fix="use 'auto', 'torch' or 'triton'")
    if backend == "torch" or (backend == "auto" and (not setup.coef.is_cuda or _TRITON_FAILED)):
        return visibility_torch(setup, height, width)
    from nha_bench.render.raster_triton import triton_available, visibility_triton

    if backend == "triton":
        return visibility_triton(setup, height, width)
    if triton_available():
        try:
            return visibility_triton(setup, height, width)
        except Exception as err:  # noqa: BLE001 - any compile/launch failure: fall back once, loudly
            _TRITON_FAILED = True
            warnings.warn(f"Triton rasterizer failed ({err!r}); using the PyTorch path from now on", stacklevel=3)
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
    verts_cam = check_verts(verts_cam, finite=False)
    faces = check_faces(faces, verts_cam.shape[1], verts_cam.device)
    K = check_K(K, verts_cam.shape[0], verts_cam, verts_arg="verts_cam")
    check_size(height, width)
    B = verts_cam.shape[0]
    setup = setup_faces(verts_cam, faces, K, height, width, znear, cull_backfaces)
    face_idx = visibility(setup, height, width, backend)

    pix, pix_face = _packed(face_idx, faces.shape[0])
    uvz = torch.cat([project_unchecked(verts_cam, K), verts_cam[..., 2:]], -1)  # (B, V, 3)
    tri = _gather_faces(uvz, faces, pix_face)  # (N, 3 vertices, u v z)
    bary_p, depth_p = _bary_depth(tri, pix, height, width)

    n_pix = B * height * width
    bary = bary_p.new_zeros(n_pix, 3).index_copy(0, pix, bary_p)
    depth = depth_p.new_zeros(n_pix).index_copy(0, pix, depth_p)
    return Fragments(face_idx, bary.view(B, height, width, 3), depth.view(B, height, width), pix, pix_face, bary_p)


def _packed(face_idx: torch.Tensor, n_faces: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices of foreground pixels and their faces as b * F + f."""
    B, H, W = face_idx.shape
    flat = face_idx.view(-1)
    pix = torch.nonzero(flat >= 0).squeeze(1)
    return pix, torch.div(pix, H * W, rounding_mode="floor") * n_faces + flat[pix]


def _gather_faces(per_vertex: torch.Tensor, faces: torch.Tensor, pix_face: torch.Tensor) -> torch.Tensor:
    """(B, V, C) or (V, C) per-vertex values -> (N, 3, C) for the faces b * F + f in ``pix_face``.

    index_select (backward: atomic index_add) rather than advanced indexing, whose backward sorts.
    """
    F = faces.shape[0]
    if per_vertex.dim() == 2:
        per_face = per_vertex.index_select(0, faces.reshape(-1)).view(F, -1)
        rows = torch.remainder(pix_face, F)
    else:
        per_face = per_vertex.index_select(1, faces.reshape(-1)).view(per_vertex.shape[0] * F, -1)
        rows = pix_face
    return per_face.index_select(0, rows).view(pix_face.shape[0], 3, per_vertex.shape[-1])


def _bary_depth(tri: torch.Tensor, pix: torch.Tensor, height: int, width: int):
    """Differentiable perspective-correct barycentrics (N, 3) and depth (N,) at pixel centres."""
    rem = torch.remainder(pix, height * width)
    y = torch.div(rem, width, rounding_mode="floor")
    q = torch.stack([rem - y * width, y], -1).to(tri.dtype) + 0.5  # (N, 2) pixel centre
    d = tri[..., :2] - q[:, None, :]  # vertex minus pixel
    a, b = d.roll(-1, 1), d.roll(-2, 1)
    # screen barycentric of vertex i ~ cross(p_{i+1} - q, p_{i+2} - q); their sum is the signed area
    cr = a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]
    w = cr / (tri[..., 2] * cr.sum(1, keepdim=True))  # l_i / z_i
    s = w.sum(1, keepdim=True)
    return w / s, 1.0 / s.squeeze(1)


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
    if attr.device != fragments.face_idx.device:
        raise RenderInputError(
            f"renderer argument `attr`: on {attr.device} but the fragments are on {fragments.face_idx.device}",
            fix="move the attributes to the rasterizer's device",
        )
    faces = check_faces(faces, attr.shape[-2], fragments.face_idx.device)
    if fragments.pix is None:
        pix, pix_face = _packed(fragments.face_idx, faces.shape[0])
        bary = fragments.bary.reshape(-1, 3).index_select(0, pix)
    else:
        pix, pix_face, bary = fragments.pix, fragments.pix_face, fragments.bary_packed
    if attr.dim() == 3 and attr.shape[0] == 1:
        attr = attr[0]
    dt = torch.promote_types(attr.dtype, bary.dtype)
    vals = _gather_faces(attr.to(dt), faces, pix_face)  # (N, 3, C)
    out_p = (bary.to(dt).unsqueeze(-1) * vals).sum(1)
    out = out_p.new_zeros(B * H * W, attr.shape[-1]).index_copy(0, pix, out_p)
    return out.view(B, H, W, attr.shape[-1])
