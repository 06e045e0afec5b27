"""Photometric metrics: L1 over the mask and MS-SSIM of the composited frames (protocol.md)."""

from __future__ import annotations

import numpy as np
import torch

from nha_bench.errors import MetricInputError
from nha_bench.metrics.base import FrameScores, ImageBatch, Metric, MetricSpec
from nha_bench.metrics.protocol import (
    composite_on_background,
    default_device,
    exact_fp32,
    masked_mean,
    to_nchw,
    validate_image_batch,
)
from nha_bench.registry import METRICS

MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
"""Wang et al. 2003 scale weights, finest first (pytorch-msssim's default)."""
MSSSIM_WIN_SIZE = 11


@METRICS.register("l1")
class L1(Metric):
    """Mean absolute RGB error over the mask pixels and the three channels, images in [0, 1]."""

    spec = MetricSpec(
        name="l1",
        higher_is_better=False,
        unit="[0,1] RGB",
        inputs="rgb",
        description="mean |pred - gt| over mask pixels and RGB channels, images in [0, 1]",
    )

    @property
    def backend(self) -> str:
        return "numpy"

    def score(self, batch: ImageBatch) -> FrameScores:
        validate_image_batch(batch, self.spec.name)
        error = np.abs(batch.pred.astype(np.float64) - batch.target.astype(np.float64))
        return FrameScores(masked_mean(error, batch.mask))


def msssim_scales(smaller_side: int, win_size: int = MSSSIM_WIN_SIZE) -> int:
    """Scales used for an image whose smaller side is ``smaller_side`` (5 when > 160 px).

    pytorch-msssim requires ``side > (win_size - 1) * 2**4`` for its 5 scales; below that we use
    the largest L with ``side > (win_size - 1) * 2**(L - 1)`` (same guard, L - 1 downsamplings).
    """
    for levels in range(len(MSSSIM_WEIGHTS), 0, -1):
        if smaller_side > (win_size - 1) * 2 ** (levels - 1):
            return levels
    raise MetricInputError(
        f"msssim: images with smaller side {smaller_side} px are too small for an "
        f"{win_size}-px SSIM window",
        fix=f"use a dataset resolution of at least {win_size} px",
    )


def ms_ssim_reduced(x: torch.Tensor, y: torch.Tensor, levels: int) -> torch.Tensor:
    """MS-SSIM over the first ``levels`` scales, weights renormalised to sum to 1, per image.

    Same loop as pytorch_msssim.ms_ssim (which hard-codes 5 scales in its size check); the
    per-scale SSIM/CS terms come from its ``_ssim`` so only the number of scales differs.
    """
    from pytorch_msssim.ssim import _fspecial_gauss_1d, _ssim

    weights = torch.tensor(MSSSIM_WEIGHTS[:levels], dtype=x.dtype, device=x.device)
    weights = weights / weights.sum()
    win = _fspecial_gauss_1d(MSSSIM_WIN_SIZE, 1.5).repeat([x.shape[1], 1, 1, 1])
    mcs = []
    for level in range(levels):
        ssim_per_channel, cs = _ssim(x, y, data_range=1.0, win=win, size_average=False)
        if level < levels - 1:
            mcs.append(torch.relu(cs))
            padding = [s % 2 for s in x.shape[2:]]
            x = torch.nn.functional.avg_pool2d(x, kernel_size=2, padding=padding)
            y = torch.nn.functional.avg_pool2d(y, kernel_size=2, padding=padding)
    stacked = torch.stack(mcs + [torch.relu(ssim_per_channel)], dim=0)
    return torch.prod(stacked ** weights.view(-1, 1, 1), dim=0).mean(1)


@METRICS.register("msssim")
class MSSSIM(Metric):
    """MS-SSIM (pytorch-msssim, data_range=1) of prediction vs. ground truth, both composited."""

    spec = MetricSpec(
        name="msssim",
        higher_is_better=True,
        unit="",
        inputs="rgb",
        description="multi-scale SSIM of the frames composited on black outside the mask",
    )

    def __init__(self, device: str | None = None, chunk: int = 16):
        self.device = torch.device(device) if device else default_device()
        self.chunk = chunk
        self._levels: int | None = None

    @property
    def backend(self) -> str:
        if self._levels is None or self._levels == len(MSSSIM_WEIGHTS):
            return "pytorch-msssim"
        return f"pytorch-msssim-{self._levels}scales"

    def score(self, batch: ImageBatch) -> FrameScores:
        from pytorch_msssim import ms_ssim  # imported here so nha_bench.metrics loads without it

        validate_image_batch(batch, self.spec.name)
        levels = msssim_scales(min(batch.target.shape[1:3]))
        if self._levels is not None and levels != self._levels:
            raise MetricInputError(
                f"msssim: this batch needs {levels} scales but earlier ones used {self._levels}",
                fix="score one dataset resolution per metric instance",
            )
        self._levels = levels
        pred, target = composite_on_background(batch)
        values = []
        with exact_fp32():
            for start in range(0, len(pred), self.chunk):
                x = to_nchw(pred[start : start + self.chunk], self.device)
                y = to_nchw(target[start : start + self.chunk], self.device)
                if levels == len(MSSSIM_WEIGHTS):
                    values.append(ms_ssim(x, y, data_range=1.0, size_average=False))
                else:
                    values.append(ms_ssim_reduced(x, y, levels))
        return FrameScores(torch.cat(values).double().cpu().numpy())
