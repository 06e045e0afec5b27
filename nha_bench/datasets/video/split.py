"""Train/val splits of a prepared video.

Rule (documented in README.md): frames are split contiguously -- "halves" (first half train) or
"ratio:R" (first R of the frames train). Frames without a face are left out of both splits. Then,
like the paper ("both sides of the head are visible at least once in the training partition"),
for each head side (yaw <= -YAW_SIDE_DEG or >= +YAW_SIDE_DEG, estimated from the landmarks) that
the val part shows in at least MIN_SIDE_FRAMES frames but the train part shows in fewer, the
longest contiguous run of that side in val (at most MAX_MOVE_FRACTION of the frames, centred on
the run, and at most half of val's frames of that side so val keeps some) is moved from val to
train.
"""

from __future__ import annotations

import numpy as np

from nha_bench.datasets.video.errors import VideoError

YAW_SIDE_DEG = 15.0
MIN_SIDE_FRAMES = 5
MAX_MOVE_FRACTION = 0.1


def yaw_proxy(landmarks: np.ndarray) -> np.ndarray:
    """Rough yaw in degrees per frame from (N, 68, 2+) iBUG landmarks: where the nose tip (30) sits
    between the jaw ends (0, 16); 0 = frontal, sign = the image side the nose turned to
    (negative: towards image left). NaN for frames whose landmarks are missing."""
    x0, x16, nose = landmarks[:, 0, 0], landmarks[:, 16, 0], landmarks[:, 30, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (nose - x0) / (x16 - x0)
    return np.degrees(np.arcsin(np.clip(2.0 * (r - 0.5), -1.0, 1.0)))


def _train_fraction(split: str) -> float:
    if split == "halves":
        return 0.5
    if split.startswith("ratio:"):
        try:
            value = float(split.split(":", 1)[1])
        except ValueError:
            value = -1.0
        if 0.0 < value < 1.0:
            return value
    raise VideoError(f"unknown split {split!r}", fix="use 'halves' or 'ratio:R' with 0 < R < 1, e.g. ratio:0.8")


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def make_splits(yaw: np.ndarray, valid: np.ndarray, split: str = "halves") -> tuple[dict[str, list[int]], list[str]]:
    """Splits over frames 0..N-1 and notes describing every block moved for head-side coverage."""
    n = len(yaw)
    cut = int(round(n * _train_fraction(split)))
    if cut < 1 or cut >= n:
        raise VideoError(f"split {split!r} of {n} frames leaves a split empty", fix="use more frames or another ratio")
    is_train = np.arange(n) < cut
    notes = []
    side = np.where(yaw <= -YAW_SIDE_DEG, -1, np.where(yaw >= YAW_SIDE_DEG, 1, 0))
    side[~valid] = 0
    for s, name in ((-1, "left"), (1, "right")):
        in_train = int(np.sum((side == s) & is_train))
        in_val = int(np.sum((side == s) & ~is_train))
        if in_val < MIN_SIDE_FRAMES or in_train >= MIN_SIDE_FRAMES:
            continue
        start, end = max(_runs((side == s) & ~is_train), key=lambda r: r[1] - r[0])
        longest = max(MIN_SIDE_FRAMES, min(int(MAX_MOVE_FRACTION * n), in_val // 2))  # val keeps some too
        if end - start > longest:
            mid = (start + end) // 2
            start, end = mid - longest // 2, mid - longest // 2 + longest
        is_train[start:end] = True
        notes.append(
            f"moved val frames {start}-{end - 1} to train: head turned to image {name} "
            f"(train had {in_train} such frames, val {in_val})"
        )
    train = [int(i) for i in np.flatnonzero(is_train & valid)]
    val = [int(i) for i in np.flatnonzero(~is_train & valid)]
    if not train or not val:
        raise VideoError("a split has no frame with a face", fix="use a video where the face is visible throughout")
    return {"train": train, "val": val}, notes
