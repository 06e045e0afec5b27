"""The rule that bounds the `face` region the geometry metrics score, on ground-truth meshes
(``datasets/synthetic/define_regions.py``: the face is the rule) and on head models
(``head.base.scored_face_mask``: their face region inside the rule) alike, so that no predicted
face reaches past the ground truth's."""

from __future__ import annotations

import numpy as np
from scipy.spatial import Delaunay

BROW_RAISE = 0.4
"""The brows are raised by this share of the chin-brow height to take in the forehead."""
FACE_OUTLINE_RULE = (
    "vertices of the neutral head inside the outline of its iBUG-68 landmarks seen from the front "
    f"(jaw line 0-16 and brows 17-26 raised by {BROW_RAISE:.0%} of the chin-brow height) and in front "
    "of the jaw-angle landmarks 0 and 16"
)


def landmark_outline_mask(vertices: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(V,) bool: FACE_OUTLINE_RULE for a neutral head's vertices (V, 3) and its iBUG-68 landmarks
    (68, 3), both in one frame with y up and z towards the viewer (any unit)."""
    vertices, landmarks = np.asarray(vertices, np.float64), np.asarray(landmarks, np.float64)
    chin_to_brow = landmarks[19, 1] - landmarks[8, 1]
    outline = np.concatenate([landmarks[0:17, :2], landmarks[17:27, :2] + [0.0, BROW_RAISE * chin_to_brow]])
    inside = Delaunay(outline).find_simplex(vertices[:, :2]) >= 0
    in_front = vertices[:, 2] > min(landmarks[0, 2], landmarks[16, 2])
    return inside & in_front
