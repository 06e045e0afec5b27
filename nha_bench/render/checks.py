"""Input validation for the renderer: every error names the argument and the fix."""

from __future__ import annotations

import torch

from nha_bench.errors import NhaBenchError


class RenderInputError(NhaBenchError):
    """A renderer function got an argument of the wrong shape, type or value."""


def _fail(arg: str, problem: str, fix: str) -> RenderInputError:
    return RenderInputError(f"renderer argument `{arg}`: {problem}", fix=fix)


def check_verts(verts: torch.Tensor, arg: str = "verts_cam") -> torch.Tensor:
    """Return ``verts`` as (B, V, 3) floating point; raise if the shape is wrong or values are NaN/inf."""
    if not isinstance(verts, torch.Tensor):
        raise _fail(arg, f"expected a torch.Tensor, got {type(verts).__name__}", "pass a tensor of shape (B, V, 3)")
    if verts.dim() == 2:
        verts = verts.unsqueeze(0)
    if verts.dim() != 3 or verts.shape[-1] != 3 or verts.shape[1] == 0:
        raise _fail(arg, f"expected shape (B, V, 3), got {tuple(verts.shape)}", "pass vertices as (batch, n_vertices, 3)")
    if not verts.is_floating_point():
        raise _fail(arg, f"expected a floating-point tensor, got {verts.dtype}", "convert with .float()")
    if not bool(torch.isfinite(verts).all()):
        raise _fail(arg, "contains NaN or inf", "check the upstream computation (head model, optimiser step) that made it")
    return verts


def check_faces(faces: torch.Tensor, n_verts: int, device: torch.device, arg: str = "faces") -> torch.Tensor:
    """Return ``faces`` as a (F, 3) int64 tensor on ``device``; raise if shape or indices are invalid."""
    if not isinstance(faces, torch.Tensor):
        raise _fail(arg, f"expected a torch.Tensor, got {type(faces).__name__}", "pass a LongTensor of shape (F, 3)")
    if faces.dim() != 2 or faces.shape[1] != 3 or faces.shape[0] == 0:
        raise _fail(arg, f"expected shape (F, 3), got {tuple(faces.shape)}", "pass triangle vertex indices as (n_faces, 3)")
    if faces.is_floating_point() or faces.dtype == torch.bool:
        raise _fail(arg, f"expected an integer tensor, got {faces.dtype}", "convert with .long()")
    faces = faces.to(device=device, dtype=torch.long)
    lo, hi = torch.stack([faces.min(), faces.max()]).tolist()  # one host sync
    if lo < 0 or hi >= n_verts:
        raise _fail(
            arg,
            f"indexes vertex {hi if hi >= n_verts else lo} but there are {n_verts} vertices",
            "faces and vertices come from different meshes; use the faces of the mesh that made the vertices",
        )
    return faces


def check_K(K: torch.Tensor, batch: int, verts: torch.Tensor, arg: str = "K") -> torch.Tensor:
    """Return intrinsics as (B, 3, 3) in the dtype/device of ``verts``; a (3, 3) K is broadcast."""
    if not isinstance(K, torch.Tensor):
        raise _fail(arg, f"expected a torch.Tensor, got {type(K).__name__}", "pass intrinsics of shape (B, 3, 3)")
    if K.dim() == 2:
        K = K.unsqueeze(0)
    if K.dim() != 3 or K.shape[1:] != (3, 3) or K.shape[0] not in (1, batch):
        raise _fail(arg, f"expected shape ({batch}, 3, 3) or (3, 3), got {tuple(K.shape)}", "pass one 3x3 pinhole matrix per batch item")
    K = K.to(device=verts.device, dtype=verts.dtype)
    if not bool(torch.isfinite(K).all() & (K[:, 0, 0] != 0).all() & (K[:, 1, 1] != 0).all()):
        raise _fail(arg, "has NaN/inf or a zero focal length", "use K = [[fx,0,cx],[0,fy,cy],[0,0,1]] in pixels")
    return K.expand(batch, 3, 3)


def check_size(height: int, width: int) -> None:
    """Raise if the image size is not two positive ints."""
    for arg, v in (("height", height), ("width", width)):
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise _fail(arg, f"expected a positive int, got {v!r}", "pass the image size in pixels")
