"""E_perc: ArcFace feature distance when the user supplies the network, else a documented substitute.

The paper compares features of a face recogniser (ArcFace). Its weights are not available
offline, so: if ``path`` (config ``perceptual_model`` or env ``NHA_ARCFACE``) names a TorchScript
file mapping (B, 3, 112, 112) images in [-1, 1] to (B, D) embeddings, E_perc = 1 - cosine
similarity of the embeddings. Otherwise E_perc = (1 - MS-SSIM) + multi-scale image-gradient l1
(pytorch-msssim), a structure-sensitive loss without learned weights. ``name`` records which.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from pytorch_msssim import ms_ssim, ssim
from torch import Tensor

from nha_bench.errors import UnavailableError

SUBSTITUTE = "msssim+gradient (substitute for ArcFace)"


def _msssim_loss(pred: Tensor, target: Tensor) -> Tensor:
    """1 - MS-SSIM with the largest odd window (<= 11) the image size allows (pytorch-msssim's
    5-level check needs side > 16 (win - 1)); single-scale SSIM below that."""
    side = min(pred.shape[-2:])
    win = min(11, (side - 1) // 16 + 1)
    win -= 1 - win % 2
    if win >= 3:
        return 1.0 - ms_ssim(pred, target, data_range=1.0, win_size=win)
    return 1.0 - ssim(pred, target, data_range=1.0, win_size=3)


def gradient_l1(pred: Tensor, target: Tensor, scales: int = 3) -> Tensor:
    """Mean l1 between finite-difference image gradients, over ``scales`` halvings."""
    total = pred.new_zeros(())
    for s in range(scales):
        if s:
            pred, target = F.avg_pool2d(pred, 2), F.avg_pool2d(target, 2)
        for dim in (-1, -2):
            total = total + (torch.diff(pred, dim=dim) - torch.diff(target, dim=dim)).abs().mean()
        if min(pred.shape[-2:]) < 4:
            break
    return total


class PerceptualLoss(torch.nn.Module):
    """Callable (pred, target) -> scalar loss for (B, 3, H, W) images in [0, 1]."""

    def __init__(self, path: str = ""):
        super().__init__()
        path = path or os.environ.get("NHA_ARCFACE", "")
        self.net: torch.jit.ScriptModule | None = None
        if path:
            file = Path(path)
            if not file.is_file():
                raise UnavailableError(
                    "ArcFace TorchScript file for the NHA perceptual loss is missing", file,
                    fix="set NHA_ARCFACE / perceptual_model to an existing file, or unset it for the substitute",
                )
            try:
                self.net = torch.jit.load(str(file), map_location="cpu").eval()
            except (RuntimeError, ValueError) as exc:
                raise UnavailableError(
                    f"cannot load the perceptual network ({exc})", file, fix="export it with torch.jit.save"
                ) from exc
            for p in self.net.parameters():
                p.requires_grad_(False)
            self.name = f"arcface:{file.name}"
        else:
            self.name = SUBSTITUTE

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        if self.net is None:
            return _msssim_loss(pred, target) + gradient_l1(pred, target)
        size = (112, 112)
        a = self.net(F.interpolate(pred, size, mode="bilinear", align_corners=False) * 2 - 1)
        b = self.net(F.interpolate(target, size, mode="bilinear", align_corners=False) * 2 - 1)
        return (1.0 - F.cosine_similarity(a, b, dim=-1)).mean()
