"""CPBD sharpness (Narvekar & Karam 2011), a port of the ``cpbd`` 1.0.7 package.

The PyPI package no longer imports (it uses the removed ``scipy.ndimage.imread``) and loops
over pixels in Python, so it is re-written here with the same steps, vectorised with numpy:
grayscale as PIL's ``L``, skimage Canny (block classification), Octave-style Sobel + thinning
(edge pixels), Marziliano edge widths, JNB widths 5 (contrast <= 50) / 3, 64 px blocks, block
edge threshold 0.002, beta 3.6, and the share of edges whose blur probability is <= 63 %.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy.ndimage import convolve

from nha_bench.metrics.base import FrameScores, ImageBatch, Metric, MetricSpec
from nha_bench.metrics.protocol import composite_on_background, validate_image_batch
from nha_bench.registry import METRICS

BLOCK = 64
EDGE_BLOCK_THRESHOLD = 0.002
BETA = 3.6
MAX_MARGIN = 100  # the reference stops widening an edge after 101 steps on each side
# skimage's HSOBEL_WEIGHTS / sum(|w|), transposed: the reference's horizontal-gradient kernel.
SOBEL_X = (np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]]) / 8.0).T


def to_gray_uint8(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) float RGB in [0, 1] -> uint8 luma as PIL's ``convert('L')`` (the reference's)."""
    rgb8 = np.round(rgb * 255.0).astype(np.uint8)
    return np.asarray(Image.fromarray(rgb8).convert("L"))


def sobel_edges(image: np.ndarray) -> np.ndarray:
    """Octave-style vertical-edge map: thresholded squared Sobel response, simply thinned."""
    strength = np.square(convolve(image, SOBEL_X))
    strength[strength <= 2 * np.sqrt(strength.mean())] = 0
    padded = np.pad(strength, 1)
    centre = padded[1:-1, 1:-1]
    across_x = (centre > padded[1:-1, :-2]) & (centre > padded[1:-1, 2:])
    across_y = (centre > padded[:-2, 1:-1]) & (centre > padded[2:, 1:-1])
    return across_x | across_y


def _run_left(cond: np.ndarray) -> np.ndarray:
    """For each (r, c): how many consecutive True in row r end at column c."""
    columns = np.arange(cond.shape[1])
    last_false = np.maximum.accumulate(np.where(cond, -1, columns), axis=1)
    return columns - last_false


def _run_right(cond: np.ndarray) -> np.ndarray:
    """For each (r, c): how many consecutive True in row r start at column c."""
    return _run_left(cond[:, ::-1])[:, ::-1]


def marziliano_widths(edges: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Edge width at each horizontal-gradient edge pixel (0 elsewhere), as the reference."""
    gradient_y, gradient_x = np.gradient(image)
    with np.errstate(invalid="ignore", divide="ignore"):
        angles = np.where(
            gradient_x != 0,
            np.arctan2(gradient_y, gradient_x) * (180 / np.pi),
            np.where(gradient_y == np.pi / 2, 90.0, 0.0),  # the reference's (odd) special case
        )
    widths = np.zeros(image.shape)
    if not np.any(angles):
        return widths
    quantized = 45 * np.round(angles / 45)
    nan_column = np.full((image.shape[0], 1), np.nan)
    step_from_left = np.hstack([nan_column, image[:, :-1] - image[:, 1:]])  # I[c-1] - I[c]
    step_to_right = np.hstack([image[:, 1:] - image[:, :-1], nan_column])  # I[c+1] - I[c]
    inner = np.zeros(image.shape, dtype=bool)
    inner[1:-1, 1:-1] = edges[1:-1, 1:-1]
    for is_direction, left_cond, right_cond in (
        (np.abs(quantized) == 180, step_from_left > 0, step_to_right < 0),
        (quantized == 0, step_from_left < 0, step_to_right > 0),
    ):
        rows, cols = np.nonzero(inner & is_direction)
        left = np.minimum(_run_left(left_cond)[rows, cols - 1], MAX_MARGIN) + 1
        right = np.minimum(_run_right(right_cond)[rows, cols + 1], MAX_MARGIN) + 1
        widths[rows, cols] = left + right
    return widths


def cpbd_gray(gray: np.ndarray) -> float:
    """CPBD of one uint8 grayscale image (0 when it has no edge block, as the reference)."""
    from skimage.feature import canny  # imported here so nha_bench.metrics loads without skimage

    image = gray.astype(np.float64)
    n_rows, n_cols = image.shape[0] // BLOCK, image.shape[1] // BLOCK
    if n_rows == 0 or n_cols == 0:
        return 0.0

    def blocks(array: np.ndarray) -> np.ndarray:
        """(n_blocks, BLOCK * BLOCK): the full 64 x 64 blocks, row-major; the rest is dropped."""
        cropped = array[: n_rows * BLOCK, : n_cols * BLOCK]
        grid = cropped.reshape(n_rows, BLOCK, n_cols, BLOCK).swapaxes(1, 2)
        return grid.reshape(-1, BLOCK * BLOCK)

    widths = marziliano_widths(sobel_edges(image), image)  # on the whole image, as the reference
    image_blocks, width_blocks = blocks(image), blocks(widths)
    edge_counts = np.count_nonzero(blocks(canny(image)), axis=1)
    is_edge_block = edge_counts > BLOCK * BLOCK * EDGE_BLOCK_THRESHOLD
    contrast = (image_blocks.max(axis=1) - image_blocks.min(axis=1)).astype(int)
    jnb = np.where(contrast <= 50, 5.0, 3.0)
    width_values = width_blocks[is_edge_block]
    jnb_values = np.broadcast_to(jnb[is_edge_block, None], width_values.shape)
    has_width = width_values != 0
    probability = 1 - np.exp(-np.abs(width_values[has_width] / jnb_values[has_width]) ** BETA)
    if probability.size == 0:
        return 0.0
    return float(np.mean(np.round(probability * 100) <= 63))


@METRICS.register("cpbd")
class CPBD(Metric):
    """No-reference sharpness of the prediction composited on black outside the mask.

    The ground truth's CPBD (same protocol) is recorded as the extra ``cpbd_gt``.
    """

    spec = MetricSpec(
        name="cpbd",
        higher_is_better=True,
        unit="",
        inputs="rgb",
        description="cumulative probability of blur detection (Narvekar & Karam 2011), "
        "prediction composited on black outside the mask, full frame",
    )

    def __init__(self, with_gt: bool = True):
        self.with_gt = with_gt

    @property
    def backend(self) -> str:
        from skimage import __version__ as skimage_version

        return f"cpbd-1.0.7-port (skimage {skimage_version} canny)"

    def score(self, batch: ImageBatch) -> FrameScores:
        validate_image_batch(batch, self.spec.name)
        pred, target = composite_on_background(batch)
        values = np.array([cpbd_gray(to_gray_uint8(frame)) for frame in pred])
        extras = {}
        if self.with_gt:
            extras["cpbd_gt"] = np.array([cpbd_gray(to_gray_uint8(frame)) for frame in target])
        return FrameScores(values, extras)
