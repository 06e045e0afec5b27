"""Approximate vertex regions from geometry, for head models shipped without part masks.

Rules in units of the inter-eye distance s (eye centres from the skinning joints), FLAME frame
(y up, z to the viewer): eyes = vertices skinned mostly to an eye joint; neck = below the plane
through a point 1.7 s under the eyes, rising 0.4 per unit depth towards the back (chin to nape);
lower_neck = the same plane 0.6 s lower; ears = lateral (|x| > 1.15 s), behind the eyes
(z < eye z - 0.9 s) at ear height; face = the front (z > eye z - 0.6 s) below the hairline
(y < eye y + 1.3 s); scalp = the rest; mouth = none. Checked against the ICT model's curated
regions in tests/test_head_flame.py. Pass FLAME_masks.pkl for FLAME's own parts.
"""

from __future__ import annotations

import numpy as np

EYE_JOINTS = (3, 4)


def geometric_regions(v: np.ndarray, weights: np.ndarray, joints: np.ndarray) -> dict[str, np.ndarray]:
    """Region masks (V,) bool from template vertices, skinning weights (V, J) and joints (J, 3)."""
    el, er = joints[EYE_JOINTS[0]], joints[EYE_JOINTS[1]]
    s = float(np.linalg.norm(el - er))
    ey, ez = (el[1] + er[1]) / 2, (el[2] + er[2]) / 2
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    eyes = np.isin(weights.argmax(1), EYE_JOINTS)
    plane = ey - 1.7 * s + 0.4 * (ez - z)
    neck = (y < plane) & ~eyes
    lower_neck = (y < plane - 0.6 * s) & ~eyes
    ears = (np.abs(x) > 1.15 * s) & (z < ez - 0.9 * s) & (y > ey - 0.8 * s) & (y < ey + 0.6 * s) & ~neck
    face = (z > ez - 0.6 * s) & (y < ey + 1.3 * s) & ~neck & ~ears & ~eyes
    scalp = ~(face | ears | eyes | neck)
    return dict(face=face, scalp=scalp, ears=ears, eyes=eyes, neck=neck,
                mouth=np.zeros(len(v), dtype=bool), lower_neck=lower_neck, head=~lower_neck)
