"""NHA's energy terms (paper section 3.2), each a small function on batched tensors.

Images are (B, C, H, W) float; masks (B, 1, H, W) float in [0, 1]; landmarks (B, 68, 2) pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# iBUG-68 eyelid pairs (upper, lower): left eye 36-41, right eye 42-47
EYELID_PAIRS = ((37, 41), (38, 40), (43, 47), (44, 46))
_LAPLACE = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def landmark_l1(pred: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """Mean visibility-weighted l1 distance (pixels) between (B, 68, 2) landmark sets."""
    w = weight[..., None]
    return ((pred - target).abs() * w).sum() / (w.sum() * 2).clamp_min(1e-8)


def eyelid_l1(pred: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """l1 between predicted and detected upper-to-lower lid offsets (eye closure), pixels."""
    up, lo = [list(p) for p in zip(*EYELID_PAIRS)]
    d_pred = pred[:, up] - pred[:, lo]
    d_tgt = target[:, up] - target[:, lo]
    w = (weight[:, up] * weight[:, lo])[..., None]
    return ((d_pred - d_tgt).abs() * w).sum() / (w.sum() * 2).clamp_min(1e-8)


def image_laplacian(img: Tensor) -> Tensor:
    """Per-channel 4-neighbour Laplacian of (B, C, H, W) with replicate padding."""
    c = img.shape[1]
    k = _LAPLACE.to(img)[None, None].expand(c, 1, 3, 3)
    return F.conv2d(F.pad(img, (1, 1, 1, 1), mode="replicate"), k, groups=c)


def normal_laplacian_l1(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """|lambda(N_hat) - lambda(N)|_1 on pixels where ``mask`` (both maps valid) is set."""
    diff = (image_laplacian(pred) - image_laplacian(target)).abs().sum(1, keepdim=True)
    return (diff * mask).sum() / mask.sum().clamp_min(1.0)


def soft_xor(pred: Tensor, target: Tensor) -> Tensor:
    """Mean differentiable xor p + t - 2 p t of (soft) region maps, i.e. the mismatched area fraction."""
    return (pred + target - 2.0 * pred * target).mean()


def masked_l1(pred: Tensor, target: Tensor) -> Tensor:
    """Photometric l1 over all pixels (both images are zero off the head)."""
    return (pred - target).abs().mean()


def mesh_laplacian(values: Tensor, edges: Tensor, n_vertices: int) -> Tensor:
    """Uniform graph Laplacian x_i - mean_{j~i} x_j of per-vertex values (B, V, C).

    edges: (E, 2) undirected vertex pairs. Hand-written: torch has no mesh Laplacian and
    pytorch3d is not a dependency.
    """
    i, j = edges[:, 0], edges[:, 1]
    deg = torch.zeros(n_vertices, device=values.device, dtype=values.dtype)
    deg.index_add_(0, i, torch.ones_like(i, dtype=values.dtype)).index_add_(0, j, torch.ones_like(j, dtype=values.dtype))
    acc = torch.zeros_like(values)
    acc.index_add_(1, i, values[:, j]).index_add_(1, j, values[:, i])
    return values - acc / deg.clamp_min(1.0)[None, :, None]


def unique_edges(faces: Tensor) -> Tensor:
    """(E, 2) sorted unique undirected edges of a triangle list (F, 3)."""
    e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return torch.unique(torch.sort(e, dim=1).values, dim=0)


def split_along_normals(offsets: Tensor, normals: Tensor) -> tuple[Tensor, Tensor]:
    """Offsets (B, V, 3) as their length along the unit vertex normals (V, 3), (B, V, 1), and the
    tangential rest along the surface, (B, V, 3)."""
    along = (offsets * normals).sum(-1, keepdim=True)
    return along, offsets - along * normals


def tangential_magnitude(offsets: Tensor, normals: Tensor) -> Tensor:
    """Mean squared length of the offsets' (B, V, 3) part along the surface, i.e. without their
    component along the vertex normals (V, 3): how far vertices slide instead of growing."""
    return split_along_normals(offsets, normals)[1].pow(2).sum(-1).mean()


def offset_regulariser(
    offsets: Tensor,
    offsets_neutral: Tensor,
    edges: Tensor,
    lap_weight: Tensor,
    norm_weight: Tensor,
    w_lap: float,
    w_norm: float,
    w_pose: float,
    lap_normals: Tensor | None = None,
    tangent_factor: float = 1.0,
) -> dict[str, Tensor]:
    """E_reg,offset: Laplacian smoothness and magnitude (each weighted per vertex: ``lap_weight``,
    ``norm_weight`` of shape (V,)) and pose consistency (offsets at the frame's pose close to
    offsets at the neutral pose). With ``lap_normals`` (V, 3) the Laplacian smooths each offset's
    length along its vertex normal and its tangential rest instead of the vector, so growing the
    whole surface outward by the same amount costs nothing; ``tangent_factor`` weights the
    tangential rest's part of it."""
    smoothed = offsets
    if lap_normals is not None:
        along, tangential = split_along_normals(offsets, lap_normals)
        smoothed = torch.cat([along, tangential * tangent_factor**0.5], dim=-1)
    lap = mesh_laplacian(smoothed, edges, offsets.shape[1])
    return {
        "offset_lap": w_lap * (lap.pow(2).sum(-1) * lap_weight).mean(),
        "offset_norm": w_norm * (offsets.pow(2).sum(-1) * norm_weight).mean(),
        "offset_pose": w_pose * (offsets - offsets_neutral).pow(2).sum(-1).mean(),
    }
