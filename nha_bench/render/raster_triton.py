"""Visibility search on CUDA with a Triton kernel: faces binned to 16x16 pixel tiles.

Binning (PyTorch): every face is listed for each tile its pixel box overlaps, sorted by tile with
faces in ascending order. Kernel: one program per (image, tile) walks its face list in blocks of
FB faces, evaluates the same affine edge/depth coefficients as the PyTorch path for all 256 pixels
and keeps the minimum (depth bits << 32 | face) key, so results match ``visibility_torch``.
Hand-written because pytorch3d (its CUDA rasterizer) cannot be installed here.
"""

from __future__ import annotations

import functools

import torch

from nha_bench.render.setup import COEF_STRIDE, FaceSetup

TILE = 16
FACE_BLOCK = 32

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU-only installs: the PyTorch path is used instead
    triton = None


@functools.lru_cache(maxsize=1)
def triton_available() -> bool:
    """True when Triton imports and a CUDA device is present."""
    return triton is not None and torch.cuda.is_available()


if triton is not None:

    @triton.jit
    def _tile_kernel(
        coef_ptr, tile_faces_ptr, tile_start_ptr, out_ptr,
        H, W, n_tx, tiles_per_img, F,
        COEF: tl.constexpr, TILE: tl.constexpr, FB: tl.constexpr,
    ):
        pid = tl.program_id(0)
        img = pid // tiles_per_img
        t = pid % tiles_per_img
        ty = t // n_tx
        tx = t % n_tx
        offs = tl.arange(0, TILE * TILE)
        py = ty * TILE + offs // TILE
        px = tx * TILE + offs % TILE
        xc = px.to(tl.float32) + 0.5
        yc = py.to(tl.float32) + 0.5
        start = tl.load(tile_start_ptr + pid)
        end = tl.load(tile_start_ptr + pid + 1)
        best = tl.full([TILE * TILE], 9223372036854775807, tl.int64)
        for i in range(start, end, FB):
            j = i + tl.arange(0, FB)
            m = j < end
            fid = tl.load(tile_faces_ptr + j, mask=m, other=0)
            c = coef_ptr + fid.to(tl.int64) * COEF
            a0 = tl.load(c + 0, mask=m, other=0.0)
            b0 = tl.load(c + 1, mask=m, other=0.0)
            c0 = tl.load(c + 2, mask=m, other=-1.0)
            a1 = tl.load(c + 3, mask=m, other=0.0)
            b1 = tl.load(c + 4, mask=m, other=0.0)
            c1 = tl.load(c + 5, mask=m, other=-1.0)
            a2 = tl.load(c + 6, mask=m, other=0.0)
            b2 = tl.load(c + 7, mask=m, other=0.0)
            c2 = tl.load(c + 8, mask=m, other=-1.0)
            dz = tl.load(c + 9, mask=m, other=0.0)
            ez = tl.load(c + 10, mask=m, other=0.0)
            gz = tl.load(c + 11, mask=m, other=-1.0)
            l0 = a0[:, None] * xc[None, :] + b0[:, None] * yc[None, :] + c0[:, None]
            l1 = a1[:, None] * xc[None, :] + b1[:, None] * yc[None, :] + c1[:, None]
            l2 = a2[:, None] * xc[None, :] + b2[:, None] * yc[None, :] + c2[:, None]
            inv_z = dz[:, None] * xc[None, :] + ez[:, None] * yc[None, :] + gz[:, None]
            inside = (l0 >= 0) & (l1 >= 0) & (l2 >= 0) & (inv_z > 0)
            z = 1.0 / inv_z
            key = (z.to(tl.int32, bitcast=True).to(tl.int64) << 32) | (fid % F).to(tl.int64)[:, None]
            key = tl.where(inside, key, 9223372036854775807)
            best = tl.minimum(best, tl.min(key, axis=0))
        ok = (py < H) & (px < W)
        face = tl.where(best == 9223372036854775807, -1, best & 0xFFFFFFFF)
        tl.store(out_ptr + img.to(tl.int64) * H * W + py * W + px, face, mask=ok)


def bin_faces(setup: FaceSetup, height: int, width: int):
    """List faces per tile: (sorted global face ids int32, tile start offsets (n_tiles + 1,), n_tx, n_ty)."""
    n_tx, n_ty = -(-width // TILE), -(-height // TILE)
    bbox = setup.bbox
    t0 = torch.div(bbox[:, :2], TILE, rounding_mode="floor")
    t1 = torch.div(bbox[:, 2:], TILE, rounding_mode="floor")
    tw = (t1[:, 0] - t0[:, 0] + 1).clamp(min=0)
    th = (t1[:, 1] - t0[:, 1] + 1).clamp(min=0)
    tw = torch.where(bbox[:, 2] >= bbox[:, 0], tw, 0)
    n = tw * th
    cum = torch.cumsum(n, 0)
    total = int(cum[-1])  # one host sync
    n_tiles = setup.batch * n_tx * n_ty
    if total == 0:
        return torch.zeros(1, dtype=torch.int32, device=bbox.device), torch.zeros(n_tiles + 1, dtype=torch.int64, device=bbox.device), n_tx, n_ty
    face = torch.repeat_interleave(torch.arange(bbox.shape[0], device=bbox.device), n, output_size=total)
    local = torch.arange(total, device=bbox.device) - (cum - n)[face]
    dy = torch.div(local, tw[face], rounding_mode="floor")
    tyy = t0[face, 1] + dy
    txx = t0[face, 0] + local - dy * tw[face]
    tile = torch.div(face, setup.n_faces, rounding_mode="floor") * (n_tx * n_ty) + tyy * n_tx + txx
    order = torch.sort(tile, stable=True).indices  # stable: faces stay ascending within a tile
    counts = torch.bincount(tile, minlength=n_tiles)
    start = torch.zeros(n_tiles + 1, dtype=torch.int64, device=bbox.device)
    start[1:] = torch.cumsum(counts, 0)
    return face[order].to(torch.int32), start, n_tx, n_ty


def visibility_triton(setup: FaceSetup, height: int, width: int) -> torch.Tensor:
    """Nearest face index per pixel (B, H, W) int64, -1 for background, computed on the GPU."""
    tile_faces, start, n_tx, n_ty = bin_faces(setup, height, width)
    out = torch.empty(setup.batch, height, width, dtype=torch.int64, device=setup.coef.device)
    grid = (setup.batch * n_tx * n_ty,)
    _tile_kernel[grid](
        setup.coef, tile_faces, start, out,
        height, width, n_tx, n_tx * n_ty, setup.n_faces,
        COEF=COEF_STRIDE, TILE=TILE, FB=FACE_BLOCK, num_warps=4,
    )
    return out
