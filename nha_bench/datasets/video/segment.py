"""Foreground masks from mediapipe selfie segmentation (the model ships in the mediapipe wheel)."""

from __future__ import annotations

import cv2
import numpy as np

from nha_bench.datasets.video.errors import import_mediapipe


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Keep the largest 8-connected foreground blob (drops background objects the model picks up)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 2:
        return mask
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


class SelfieSegmenter:
    """mediapipe 0.10.14 ``solutions.selfie_segmentation`` (general 256x256 model)."""

    model_id = "mediapipe==0.10.14 solutions.selfie_segmentation (model_selection=0)"

    def __init__(self, threshold: float = 0.5):
        mp = import_mediapipe()
        self._seg = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
        self.threshold = threshold

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """(H, W) bool foreground of an RGB uint8 frame."""
        result = self._seg.process(frame)
        return largest_component(np.asarray(result.segmentation_mask) > self.threshold)

    def close(self) -> None:
        self._seg.close()
