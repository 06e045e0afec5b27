"""The crop window: one fixed square window per video around the smoothed head track.

Why fixed: the subject format has ONE intrinsics matrix per subject. A window that moved or
zoomed per frame would change the principal point / focal length per frame, which every consumer
(tracker, renderers) would have to know about. Our clips keep a mostly static framing, so a single
window that contains the smoothed head box of every frame loses little resolution; when it has to
be larger than the frame, it is clamped and the frames where the head leaves it are reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import median_filter
from scipy.signal import savgol_filter

# The face mesh spans brows-to-chin and ear-to-ear; a head box with hair and neck is about
# 1.9x its size, centred slightly above (hair is above, neck below but shorter in the crop).
HEAD_SCALE = 1.9
HEAD_SHIFT_UP = 0.12  # of the face size
# Default focal length of the ORIGINAL video when the camera is unknown: fx = fy = 1.5 * max(W, H)
# (a ~37 degree field of view across the long side, typical for portrait/talking-head footage
# shot at arm's length or with a mild tele lens). Principal point at the image centre.
DEFAULT_FOCAL_FACTOR = 1.5


@dataclass(frozen=True)
class CropWindow:
    """Square window [x0, x0 + side) x [y0, y0 + side) in source pixels, resized to ``res``."""

    x0: int
    y0: int
    side: int
    res: int

    @property
    def scale(self) -> float:
        return self.res / self.side

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """Cut the window out of ``frame`` and resize it to res x res (area filter when shrinking)."""
        patch = frame[self.y0 : self.y0 + self.side, self.x0 : self.x0 + self.side]
        if self.side == self.res:
            return np.ascontiguousarray(patch)
        interp = cv2.INTER_AREA if self.side > self.res else cv2.INTER_CUBIC
        return cv2.resize(patch, (self.res, self.res), interpolation=interp)

    def points(self, xy: np.ndarray) -> np.ndarray:
        """Map source pixel coordinates (..., 2+) to crop pixel coordinates (continuous, centres at +0.5)."""
        out = np.array(xy, dtype=np.float32, copy=True)
        out[..., 0] = (out[..., 0] - self.x0) * self.scale
        out[..., 1] = (out[..., 1] - self.y0) * self.scale
        if out.shape[-1] > 2:  # mediapipe z is in x-pixel units
            out[..., 2:] *= self.scale
        return out

    def intrinsics(self, K_source: np.ndarray) -> np.ndarray:
        """Intrinsics of the crop, given those of the source video."""
        K = np.array(K_source, dtype=np.float64, copy=True)
        K[0, 2] -= self.x0
        K[1, 2] -= self.y0
        K[:2] *= self.scale
        return K


def source_intrinsics(width: int, height: int, focal: float | None = None) -> np.ndarray:
    """Pinhole intrinsics of the source video; focal defaults to DEFAULT_FOCAL_FACTOR * max(W, H)."""
    f = float(focal) if focal else DEFAULT_FOCAL_FACTOR * max(width, height)
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def _fill_missing(values: np.ndarray) -> np.ndarray:
    """Linear interpolation over NaN rows (ends held constant)."""
    out = values.copy()
    t = np.arange(len(values))
    for c in range(values.shape[1]):
        ok = np.isfinite(values[:, c])
        out[:, c] = np.interp(t, t[ok], values[ok, c])
    return out


def smooth_head_track(face_boxes: np.ndarray) -> np.ndarray:
    """Per-frame head boxes (N, 3) = (cx, cy, side) from face-mesh boxes (N, 4) = (x0, y0, x1, y1),
    NaN where no face: gaps interpolated, a 9-frame median removes detector outliers, a
    Savitzky-Golay filter (window 15, order 2) smooths the jitter."""
    ok = np.isfinite(face_boxes).all(axis=1)
    if not ok.any():
        raise ValueError("no face box in any frame")
    x0, y0, x1, y1 = face_boxes.T
    size = np.maximum(x1 - x0, y1 - y0)
    track = np.stack([(x0 + x1) / 2, (y0 + y1) / 2 - HEAD_SHIFT_UP * size, HEAD_SCALE * size], axis=1)
    track = _fill_missing(track)
    n = len(track)
    if n >= 3:
        track = median_filter(track, size=(min(9, n), 1), mode="nearest")
    window = min(15, n if n % 2 else n - 1)
    if window >= 5:
        track = savgol_filter(track, window, 2, axis=0, mode="interp")
    return track


@dataclass(frozen=True)
class WindowFit:
    window: CropWindow
    clamped: bool  # the union of head boxes did not fit in the frame
    outside: tuple[int, ...]  # frames whose head box leaves the window


def fit_window(track: np.ndarray, face_boxes: np.ndarray, width: int, height: int, res: int) -> WindowFit:
    """The smallest square containing every head box of ``track`` (N, 3), shifted into the frame and
    clamped to its shorter side; ``outside`` lists frames whose face box (N, 4: x0, y0, x1, y1, NaN
    when no face) leaves the window (head boxes have a generous hair margin, face boxes do not)."""
    half = track[:, 2] / 2
    lo = np.array([np.min(track[:, 0] - half), np.min(track[:, 1] - half)])
    hi = np.array([np.max(track[:, 0] + half), np.max(track[:, 1] + half)])
    side_f = float(np.max(hi - lo))
    limit = min(width, height)
    clamped = side_f > limit
    side = int(min(limit, np.ceil(side_f)))
    centre = (lo + hi) / 2
    x0 = int(np.clip(np.round(centre[0] - side / 2), 0, width - side))
    y0 = int(np.clip(np.round(centre[1] - side / 2), 0, height - side))
    window = CropWindow(x0, y0, side, res)
    with np.errstate(invalid="ignore"):
        leaves = (face_boxes[:, 0] < x0) | (face_boxes[:, 1] < y0) | (face_boxes[:, 2] > x0 + side) | (face_boxes[:, 3] > y0 + side)
    outside = tuple(int(i) for i in np.flatnonzero(leaves))
    return WindowFit(window, clamped, outside)
