"""Low-frequency appearance for the photometric term: per-vertex albedo under 9-coefficient
spherical-harmonics lighting (as in Face2Face), plus the albedo smoothness regulariser.

Hand-written because it is a dozen lines of well-known formulas (Ramamoorthi & Hanrahan 2001).
"""

from __future__ import annotations

import torch
from torch import Tensor

_C0 = 0.282095  # Y_00
_C1 = 0.488603  # Y_1m
_C2 = 1.092548  # Y_2-2, Y_2-1, Y_21
_C3 = 0.315392  # Y_20
_C4 = 0.546274  # Y_22


def sh_basis(normals: Tensor) -> Tensor:
    """Real SH basis up to band 2 at unit ``normals`` (..., 3) -> (..., 9)."""
    x, y, z = normals.unbind(-1)
    one = torch.ones_like(x)
    return torch.stack(
        [
            _C0 * one,
            _C1 * y,
            _C1 * z,
            _C1 * x,
            _C2 * x * y,
            _C2 * y * z,
            _C3 * (3 * z * z - 1),
            _C2 * x * z,
            _C4 * (x * x - y * y),
        ],
        dim=-1,
    )


def ambient_sh(batch: int, device: torch.device | str | None = None) -> Tensor:
    """SH coefficients (B, 9, 3) giving uniform white shading of exactly 1."""
    sh = torch.zeros(batch, 9, 3, device=device)
    sh[:, 0] = 1.0 / _C0
    return sh


def shade(normals: Tensor, sh: Tensor) -> Tensor:
    """Irradiance (B, ..., 3) at unit ``normals`` (B, ..., 3) under SH coefficients ``sh`` (B, 9, 3)."""
    basis = sh_basis(normals)  # (B, ..., 9)
    flat = basis.reshape(basis.shape[0], -1, 9)
    return torch.bmm(flat, sh).reshape(*normals.shape[:-1], 3)


def mesh_edges(faces: Tensor) -> Tensor:
    """Unique undirected edges (E, 2) of a triangle mesh."""
    e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]], dim=0)
    e = torch.sort(e, dim=1).values
    return torch.unique(e, dim=0)


def smoothness(values: Tensor, edges: Tensor) -> Tensor:
    """Mean squared difference of per-vertex ``values`` (V, C) across ``edges`` (E, 2)."""
    d = values[edges[:, 0]] - values[edges[:, 1]]
    return (d * d).sum(-1).mean()
