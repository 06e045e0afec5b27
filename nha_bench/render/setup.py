"""Per-face screen-space setup shared by the PyTorch and Triton visibility searches (no gradients).

For each face the three edge functions and the inverse depth are affine in pixel coordinates:
l_i(x, y) = A_i x + B_i y + C_i (screen barycentrics, summing to 1) and 1/z = D x + E y + G.
Both searches evaluate exactly these 12 coefficients, so they pick the same faces.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nha_bench.render.camera import project_unchecked

COEF_STRIDE = 16  # 12 coefficients padded to 64 bytes per face for aligned loads in the kernel


@dataclass
class FaceSetup:
    """coef: (B*F, 16) float32; bbox: (B*F, 4) int64 inclusive pixel box x0, y0, x1, y1 (empty: x1 < x0)."""

    coef: torch.Tensor
    bbox: torch.Tensor
    batch: int
    n_faces: int


@torch.no_grad()
def setup_faces(
    verts_cam: torch.Tensor,
    faces: torch.Tensor,
    K: torch.Tensor,
    height: int,
    width: int,
    znear: float,
    cull_backfaces: bool,
    expand: float = 0.0,
) -> FaceSetup:
    """Compute edge/depth coefficients and pixel bounding boxes (grown by ``expand`` px) per face."""
    B, F = verts_cam.shape[0], faces.shape[0]
    v = verts_cam.detach().float()
    uvz = torch.cat([project_unchecked(v, K.detach().float()), v[..., 2:]], -1)
    tri = uvz.index_select(1, faces.reshape(-1)).view(B, F, 3, 3)
    tri_uv, tri_z = tri[..., :2], tri[..., 2]
    a, b = tri_uv.roll(-1, 2), tri_uv.roll(-2, 2)  # l_i is the edge function of (p_{i+1} -> p_{i+2})
    d = b - a
    area = d[:, :, 0, 0] * d[:, :, 1, 1] - d[:, :, 0, 1] * d[:, :, 1, 0]  # (p2-p1) x (p0-p2) = 2 x signed area
    valid = (tri_z > znear).all(-1) & (area.abs() > 1e-12) & torch.isfinite(area)
    if cull_backfaces:
        t3 = v.index_select(1, faces.reshape(-1)).view(B, F, 3, 3)
        normal = torch.cross(t3[:, :, 1] - t3[:, :, 0], t3[:, :, 2] - t3[:, :, 0], dim=-1)
        valid &= (normal * t3[:, :, 0]).sum(-1) < 0  # front faces: normal points towards the camera
    inv_area = torch.where(valid, 1.0 / torch.where(valid, area, 1.0), 0.0)
    inv_z = 1.0 / torch.where(valid[..., None], tri_z, 1.0)
    # l_i(x, y) = (A_i x + B_i y + C_i) with A = -dy, B = dx, C = dy a_x - dx a_y, over the area
    abc = torch.stack([-d[..., 1], d[..., 0], d[..., 1] * a[..., 0] - d[..., 0] * a[..., 1]], -1) * inv_area[..., None, None]
    dez = (abc * inv_z[..., None]).sum(2)  # 1/z = sum_i l_i / z_i, also affine
    coef = torch.cat([abc.reshape(B, F, 9), dez, abc.new_zeros(B, F, COEF_STRIDE - 12)], -1)
    lo = tri_uv.amin(2) - expand  # (B, F, 2)
    hi = tri_uv.amax(2) + expand
    size = torch.tensor([width, height], device=v.device, dtype=torch.float32)
    # pixel c covers centre c + 0.5: first c with c + 0.5 >= lo, last with c + 0.5 <= hi
    lo = torch.minimum(lo.clamp(min=-1.0), size + 1)
    hi = torch.minimum(hi.clamp(min=-1.0), size + 1)
    x0y0 = torch.ceil(lo - 0.5).clamp(min=0)
    x1y1 = torch.minimum(torch.floor(hi - 0.5), size - 1)
    empty = torch.tensor([0.0, 0.0, -1.0, -1.0], device=v.device)
    bbox = torch.where(valid[..., None], torch.cat([x0y0, x1y1], -1), empty).long()
    return FaceSetup(coef.reshape(B * F, COEF_STRIDE), bbox.reshape(B * F, 4), B, F)


def enumerate_pixels(bbox: torch.Tensor, budget: int):
    """Yield (face, y, x) int64 tensors listing every pixel of every face's box, <= ~budget per chunk.

    Faces are kept in ascending order, so reductions that break ties by order stay deterministic.
    """
    w = (bbox[:, 2] - bbox[:, 0] + 1).clamp(min=0)
    h = (bbox[:, 3] - bbox[:, 1] + 1).clamp(min=0)
    n = w * h
    ids = torch.nonzero(n).squeeze(1)
    if ids.numel() == 0:
        return
    n = n[ids]
    cum = torch.cumsum(n, 0)
    total = int(cum[-1])
    marks = torch.arange(budget, max(total, budget), budget, device=cum.device)
    cuts = [0] + sorted(set(torch.searchsorted(cum, marks, right=True).tolist())) + [ids.numel()]
    for s, e in zip(cuts[:-1], cuts[1:]):
        if e <= s:
            continue
        f, cnt = ids[s:e], n[s:e]
        m = int(cum[e - 1] - (cum[s - 1] if s > 0 else 0))
        rep = torch.repeat_interleave(torch.arange(e - s, device=f.device), cnt, output_size=m)
        local = torch.arange(m, device=f.device) - (torch.cumsum(cnt, 0) - cnt)[rep]
        face = f[rep]
        wf = w[face]
        dy = torch.div(local, wf, rounding_mode="floor")
        yield face, bbox[face, 1] + dy, bbox[face, 0] + local - dy * wf
