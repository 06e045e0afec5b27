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
import trimesh
from scipy.spatial import cKDTree

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


def thin_part_mask(vertices: np.ndarray, faces: np.ndarray, mask: np.ndarray, max_thickness: float) -> np.ndarray:
    """(V,) bool: the vertices of ``mask`` where the surface is a flap thinner than
    ``max_thickness`` (a ray from the vertex against its normal leaves the surface again within that
    distance), e.g. the pinna of a head model's ``ears`` region without the scalp around it. Rays are
    cast by trimesh against the faces within ``max_thickness`` of ``mask`` only."""
    vertices, faces = np.asarray(vertices, np.float64), np.asarray(faces)
    ids = np.flatnonzero(mask)
    near = np.isfinite(cKDTree(vertices[ids]).query(vertices, distance_upper_bound=max_thickness)[0])
    normals = trimesh.Trimesh(vertices, faces, process=False).vertex_normals[ids]
    target = trimesh.Trimesh(vertices, faces[near[faces].any(axis=1)], process=False)
    origins = vertices[ids] - normals * 1e-3 * max_thickness  # start just inside the surface
    hits, ray, _ = target.ray.intersects_location(origins, -normals, multiple_hits=False)
    thin = np.zeros(len(vertices), dtype=bool)
    thin[ids[ray[np.linalg.norm(hits - origins[ray], axis=1) < max_thickness]]] = True
    return thin


PINNA_MAX_THICKNESS_M = 0.02
"""The pinna is the part of a head model's ``ears`` region thinner than this: ICT's ``ears`` also takes
in a band of scalp round the ear (reports/nha/README.md, sessions 10 and 15)."""


def pinna_mask(vertices: np.ndarray, faces: np.ndarray, ears: np.ndarray) -> np.ndarray:
    """(V,) bool: the ear's flap within the ``ears`` mask (V,) of a mesh in metres."""
    return thin_part_mask(vertices, faces, ears, PINNA_MAX_THICKNESS_M)
