"""Input validation for the renderer: every error names the argument and the fix."""

from __future__ import annotations

import weakref

import torch

from nha_bench.errors import RenderInputError

# faces tensors already validated: id -> (weak ref, in-place version, n_verts, converted tensor);
# the index range check costs a GPU->CPU sync, and the same faces buffer is passed every step
_FACES_OK: dict[int, tuple] = {}


def _fail(arg: str, problem: str, fix: str) -> RenderInputError:
    return RenderInputError(f"renderer argument `{arg}`: {problem}", fix=fix)


def check_verts(verts: torch.Tensor, arg: str = "verts_cam", finite: bool = True) -> torch.Tensor:
    """Return ``verts`` as (B, V, 3) floating point; raise if the shape is wrong or values are NaN/inf."""
    if not isinstance(verts, torch.Tensor):
        raise _fail(arg, f"expected a torch.Tensor, got {type(verts).__name__}", "pass a tensor of shape (B, V, 3)")
    if verts.dim() == 2:
        verts = verts.unsqueeze(0)
    if verts.dim() != 3 or verts.shape[-1] != 3 or verts.shape[1] == 0:
        raise _fail(arg, f"expected shape (B, V, 3), got {tuple(verts.shape)}", "pass vertices as (batch, n_vertices, 3)")
    if not verts.is_floating_point():
        raise _fail(arg, f"expected a floating-point tensor, got {verts.dtype}", "convert with .float()")
    if finite and not bool(torch.isfinite(verts).all()):
        raise _nonfinite(arg)
    return verts


def _nonfinite(arg: str) -> RenderInputError:
    return _fail(arg, "contains NaN or inf", "check the upstream computation (head model, optimiser step) that made it")


def check_faces(faces: torch.Tensor, n_verts: int, device: torch.device, arg: str = "faces") -> torch.Tensor:
    """Return ``faces`` as a (F, 3) int64 tensor on ``device``; raise if shape or indices are invalid."""
    if not isinstance(faces, torch.Tensor):
        raise _fail(arg, f"expected a torch.Tensor, got {type(faces).__name__}", "pass a LongTensor of shape (F, 3)")
    if faces.dim() != 2 or faces.shape[1] != 3 or faces.shape[0] == 0:
        raise _fail(arg, f"expected shape (F, 3), got {tuple(faces.shape)}", "pass triangle vertex indices as (n_faces, 3)")
    if faces.is_floating_point() or faces.dtype == torch.bool:
        raise _fail(arg, f"expected an integer tensor, got {faces.dtype}", "convert with .long()")
    hit = _FACES_OK.get(id(faces))
    if hit is not None and hit[0]() is faces and hit[1] == faces._version and hit[2] == n_verts and hit[3].device == device:
        return hit[3]
    original = faces
    faces = faces.to(device=device, dtype=torch.long)
    lo, hi = torch.stack([faces.min(), faces.max()]).tolist()  # one host sync
    if lo < 0 or hi >= n_verts:
        raise _fail(
            arg,
            f"indexes vertex {hi if hi >= n_verts else lo} but there are {n_verts} vertices",
            "faces and vertices come from different meshes; use the faces of the mesh that made the vertices",
        )
    if len(_FACES_OK) > 64:
        _FACES_OK.clear()
    try:
        _FACES_OK[id(original)] = (weakref.ref(original), original._version, n_verts, faces)
    except TypeError:  # tensors that cannot be weakly referenced are simply not cached
        pass
    return faces


def check_K(K: torch.Tensor, batch: int, verts: torch.Tensor, arg: str = "K", verts_arg: str | None = None) -> torch.Tensor:
    """Return intrinsics as (B, 3, 3) in the dtype/device of ``verts``; a (3, 3) K is broadcast.

    With ``verts_arg``, also checks ``verts`` for NaN/inf in the same host sync.
    """
    if not isinstance(K, torch.Tensor):
        raise _fail(arg, f"expected a torch.Tensor, got {type(K).__name__}", "pass intrinsics of shape (B, 3, 3)")
    if K.dim() == 2:
        K = K.unsqueeze(0)
    if K.dim() != 3 or K.shape[1:] != (3, 3) or K.shape[0] not in (1, batch):
        raise _fail(arg, f"expected shape ({batch}, 3, 3) or (3, 3), got {tuple(K.shape)}", "pass one 3x3 pinhole matrix per batch item")
    K = K.to(device=verts.device, dtype=verts.dtype)
    k_ok = torch.isfinite(K).all() & (K[:, 0, 0] != 0).all() & (K[:, 1, 1] != 0).all()
    v_ok, k_ok = torch.stack([torch.isfinite(verts).all() if verts_arg else k_ok, k_ok]).tolist()  # one host sync
    if not v_ok:
        raise _nonfinite(verts_arg)
    if not k_ok:
        raise _fail(arg, "has NaN/inf or a zero focal length", "use K = [[fx,0,cx],[0,fy,cy],[0,0,1]] in pixels")
    return K.expand(batch, 3, 3)


def check_size(height: int, width: int) -> None:
    """Raise if the image size is not two positive ints."""
    for arg, v in (("height", height), ("width", width)):
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise _fail(arg, f"expected a positive int, got {v!r}", "pass the image size in pixels")
