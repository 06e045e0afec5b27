"""Visibility search in plain PyTorch (CPU and CUDA): per-face bounding boxes + scatter-min z-buffer.

Each (face, pixel) candidate inside its triangle gets the int64 key (float32 depth bits << 32) | face;
positive float32 bit patterns order like the floats, so ``scatter_reduce(amin)`` keeps the nearest
face per pixel, ties going to the lower face index. Hand-written because pytorch3d is not installable.
"""

from __future__ import annotations

import torch

from nha_bench.render.setup import FaceSetup, enumerate_pixels

EMPTY_KEY = torch.iinfo(torch.int64).max
CANDIDATE_BUDGET = 1 << 22  # candidates evaluated per chunk: bounds memory to ~100 MB


def candidate_keys(coef: torch.Tensor, face: torch.Tensor, y: torch.Tensor, x: torch.Tensor, n_faces: int):
    """Return (inside mask, key) for candidate pixels (x, y) of global faces ``face``."""
    c = coef[face]
    xc = x.to(torch.float32) + 0.5
    yc = y.to(torch.float32) + 0.5
    l0 = c[:, 0] * xc + c[:, 1] * yc + c[:, 2]
    l1 = c[:, 3] * xc + c[:, 4] * yc + c[:, 5]
    l2 = c[:, 6] * xc + c[:, 7] * yc + c[:, 8]
    inv_z = c[:, 9] * xc + c[:, 10] * yc + c[:, 11]
    inside = (l0 >= 0) & (l1 >= 0) & (l2 >= 0) & (inv_z > 0)
    z = (1.0 / inv_z).contiguous()
    key = (z.view(torch.int32).to(torch.int64) << 32) | torch.remainder(face, n_faces)
    return inside, key


def visibility_torch(setup: FaceSetup, height: int, width: int) -> torch.Tensor:
    """Nearest face index per pixel, (B, H, W) int64 with -1 for background."""
    B, F = setup.batch, setup.n_faces
    keys = torch.full((B * height * width,), EMPTY_KEY, dtype=torch.int64, device=setup.coef.device)
    for face, y, x in enumerate_pixels(setup.bbox, CANDIDATE_BUDGET):
        inside, key = candidate_keys(setup.coef, face, y, x, F)
        pix = torch.div(face, F, rounding_mode="floor") * (height * width) + y * width + x
        keys.scatter_reduce_(0, pix[inside], key[inside], reduce="amin")
    face_idx = torch.where(keys == EMPTY_KEY, -1, keys & 0xFFFFFFFF)
    return face_idx.view(B, height, width)
