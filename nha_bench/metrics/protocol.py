"""The one masking protocol shared by every image metric (written out in ``protocol.md``).

- Mask: the dataset's foreground (head) mask of the ground-truth frame, the same for every method.
- Background: outside the mask, BOTH prediction and ground truth are replaced by
  ``BACKGROUND_RGB`` (black) before MS-SSIM, LPIPS, CPBD and CSIM; L1 is averaged over mask
  pixels only.
- Resolution: the dataset's. A prediction of another size is an error; nothing is resized.
- Crop: none; every metric sees the full frame.
- CSIM: a frame where no face is found (in prediction or ground truth) gets NaN and is reported
  as skipped, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from nha_bench.errors import MetricInputError
from nha_bench.metrics.base import ImageBatch

BACKGROUND_RGB: tuple[float, float, float] = (0.0, 0.0, 0.0)
"""Colour (RGB in [0, 1]) that replaces everything outside the mask, in prediction and target."""

RENDER_FIX = "render the method at the dataset's resolution, RGB float in [0, 1], no NaN"


def validate_image_batch(batch: ImageBatch, metric: str) -> None:
    """Raise MetricInputError naming the problem unless ``batch`` follows the protocol."""
    for name in ("pred", "target", "mask"):
        if not isinstance(getattr(batch, name), np.ndarray):
            raise MetricInputError(f"{metric}: batch.{name} is not a numpy array", fix=RENDER_FIX)
    pred, target, mask = batch.pred, batch.target, batch.mask
    if target.ndim != 4 or target.shape[-1] != 3 or target.shape[0] == 0:
        raise MetricInputError(
            f"{metric}: ground truth has shape {target.shape}, expected (N>0, H, W, 3)",
            fix="pass RGB frames as an (N, H, W, 3) array",
        )
    if pred.shape != target.shape:
        raise MetricInputError(
            f"{metric}: prediction has shape {pred.shape} but the ground truth has {target.shape}; "
            "predictions are never resized",
            fix=RENDER_FIX,
        )
    if mask.shape != target.shape[:3]:
        raise MetricInputError(
            f"{metric}: mask has shape {mask.shape}, expected {target.shape[:3]} (N, H, W)",
            fix="use the dataset's mask of the same frames at the same resolution",
        )
    if mask.dtype != np.bool_:
        raise MetricInputError(
            f"{metric}: mask has dtype {mask.dtype}, expected bool", fix="pass mask > 0.5"
        )
    for name, array in (("prediction", pred), ("ground truth", target)):
        if not np.issubdtype(array.dtype, np.floating):
            raise MetricInputError(
                f"{metric}: {name} has dtype {array.dtype}, expected float in [0, 1]",
                fix="convert uint8 images with img.astype(np.float32) / 255",
            )
        finite = np.isfinite(array)
        if not finite.all():
            frames = np.flatnonzero(~finite.reshape(len(array), -1).all(axis=1))
            raise MetricInputError(
                f"{metric}: {name} has NaN/inf values in frames {frames[:10].tolist()}",
                fix=RENDER_FIX,
            )
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise MetricInputError(
                f"{metric}: {name} has values in [{low:.4g}, {high:.4g}], outside [0, 1]",
                fix="clip or rescale the images to [0, 1]",
            )
    check_masks_not_empty(mask, metric)


def check_masks_not_empty(mask: np.ndarray, metric: str) -> None:
    """Raise MetricInputError naming the batch frames whose (N, H, W) mask is empty."""
    empty = np.flatnonzero(~mask.reshape(len(mask), -1).any(axis=1))
    if len(empty):
        raise MetricInputError(
            f"{metric}: the mask is empty in batch frames {empty[:10].tolist()}",
            fix="check the dataset's mask/ folder for these frames",
        )


def composite_on_background(batch: ImageBatch) -> tuple[np.ndarray, np.ndarray]:
    """Prediction and target (float32, (N, H, W, 3)) with everything outside the mask black."""
    keep = batch.mask[..., None]
    background = np.asarray(BACKGROUND_RGB, dtype=np.float32)
    pred = np.where(keep, batch.pred.astype(np.float32, copy=False), background)
    target = np.where(keep, batch.target.astype(np.float32, copy=False), background)
    return pred, target


def masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-frame mean of ``values`` ((N, H, W) or (N, H, W, C)) over the pixels where ``mask``."""
    if values.ndim == 4:
        values = values.mean(axis=-1)
    weights = mask.astype(np.float64)
    return (values * weights).sum(axis=(1, 2)) / weights.sum(axis=(1, 2))


def to_nchw(images: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """(N, H, W, 3) numpy images as an (N, 3, H, W) float32 torch tensor on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).to(
        device=device, dtype=torch.float32
    )


def default_device() -> torch.device:
    """CUDA when available, else CPU (the image metrics' default)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextmanager
def exact_fp32() -> Iterator[None]:
    """No gradients and no TF32 (cuDNN convolutions use TF32 by default on GPUs, which
    loses precision in SSIM's variance terms); the previous settings are restored after."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.no_grad():
            yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
