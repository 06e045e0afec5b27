"""NHA's subject-specific networks: the offset MLP G, the normal-patch encoder and the texture MLP T.

Both MLPs are SIREN-style coordinate networks (sine activations with the SIREN initialisation of
Sitzmann et al. 2020) conditioned by FiLM as in pi-GAN, which NHA cites for them. torch ships no
SIREN layer, hence the hand-written layers.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class SineLayer(nn.Module):
    """y = sin(omega * (W x + b)) with SIREN's initialisation."""

    def __init__(self, n_in: int, n_out: int, first: bool, omega: float = 30.0):
        super().__init__()
        self.omega = omega
        self.linear = nn.Linear(n_in, n_out)
        bound = 1.0 / n_in if first else math.sqrt(6.0 / n_in) / omega
        with torch.no_grad():
            self.linear.weight.uniform_(-bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(self.omega * self.linear(x))


class FilmSiren(nn.Module):
    """SIREN on coordinates, conditioned by FiLM (pi-GAN style, the coordinate MLPs NHA cites):
    layer i computes sin(omega * (1 + g_i) * (W_i h + b_i) + beta_i), with (g_i, beta_i) from a small
    ReLU mapping network of the conditioning vector, small at initialisation (near plain SIREN)."""

    def __init__(self, n_in: int, n_cond: int, n_out: int, width: int, layers: int, out_scale: float = 1.0):
        super().__init__()
        dims = [n_in] + [width] * layers
        self.layers = nn.ModuleList([SineLayer(a, b, first=i == 0) for i, (a, b) in enumerate(zip(dims, dims[1:]))])
        self.width, self.n_layers = width, layers
        hidden = max(32, min(width, 128))
        self.mapping = nn.Sequential(
            nn.Linear(n_cond, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, 2 * layers * width),
        )
        self.head = nn.Linear(width, n_out)
        with torch.no_grad():
            self.mapping[-1].weight.mul_(0.1)
            self.mapping[-1].bias.zero_()
            self.head.weight.mul_(out_scale)
            self.head.bias.zero_()

    def film(self, cond: Tensor) -> Tensor:
        """cond (..., n_cond) -> (..., 2, layers, width): each layer's frequency gains g and phases beta."""
        return self.mapping(cond).unflatten(-1, (2, self.n_layers, self.width))

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        """x (..., n_in), cond (..., n_cond) broadcastable to x's leading dims -> (..., n_out)."""
        film = self.film(cond)
        h = x
        for i, layer in enumerate(self.layers):
            h = torch.sin(layer.omega * (1 + film[..., 0, i, :]) * layer.linear(h) + film[..., 1, i, :])
        return self.head(h)


class OffsetMLP(nn.Module):
    """G: (canonical vertex in [-1, 1]^3, joint poses theta) -> per-vertex offset in metres."""

    def __init__(self, n_pose: int, width: int, layers: int, scale: float = 0.01):
        super().__init__()
        self.scale = scale  # offsets are predicted in centimetres, returned in metres
        self.net = FilmSiren(3, n_pose, 3, width, layers, out_scale=1e-2)

    def forward(self, canonical: Tensor, pose: Tensor) -> Tensor:
        """canonical (V, 3), pose (B, n_pose) -> offsets (B, V, 3)."""
        return self.net(canonical[None], pose[:, None, :]) * self.scale


class NormalPatchEncoder(nn.Module):
    """Small CNN that encodes the n x n patch of rendered normals around each pixel.

    Fully convolutional (valid padding per patch via zero padding), so applying it to the whole
    normal image equals applying it to every pixel's patch; n = 1 + 2 * number of 3x3 layers.
    """

    def __init__(self, patch: int, features: int):
        super().__init__()
        n_layers = max(1, (patch - 1) // 2)
        chans = [3] + [features] * n_layers
        mods: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(chans, chans[1:])):
            mods.append(nn.Conv2d(a, b, 3, padding=1))
            if i < n_layers - 1:
                mods.append(nn.LeakyReLU(0.2))
        self.net = nn.Sequential(*mods)
        self.patch = 1 + 2 * n_layers

    def forward(self, normals: Tensor) -> Tensor:
        """normals (B, 3, H, W), zero off the surface -> features (B, C, H, W)."""
        return self.net(normals)


class TextureMLP(nn.Module):
    """T: (canonical surface point, normal-patch feature; frame's expression and pose) -> RGB in [0, 1].

    The per-pixel inputs (point, normal feature) enter the SIREN; the per-frame code (expression,
    joint poses) drives the FiLM mapping once per frame. FiLM on per-pixel inputs would run the
    mapping network (-> 2 x layers x width values) for every pixel: 2.6 GB per step at 157k pixels,
    the bulk of a real clip's texture-stage time (reports/nha/README.md, session 4)."""

    def __init__(self, n_features: int, n_cond: int, width: int, layers: int):
        super().__init__()
        self.net = FilmSiren(3 + n_features, n_cond, 3, width, layers)

    def forward(self, points: Tensor, features: Tensor, frame_cond: Tensor, pixels_per_frame: list[int]) -> Tensor:
        """points (P, 3) in [-1, 1] and features (P, C) of the pixels of B frames, frame by frame;
        frame_cond (B, n_cond); pixels_per_frame: B counts summing to P -> (P, 3) colours."""
        x = torch.cat([points, features], dim=-1).split(pixels_per_frame)
        return torch.sigmoid(torch.cat([self.net(xb, cb) for xb, cb in zip(x, frame_cond)]))
