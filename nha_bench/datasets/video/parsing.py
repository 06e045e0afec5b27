"""Semantic parsing (labels of nha_bench.datasets.format.LABELS) without a parsing network.

The fallback builds labels from geometry and colour (see README.md in this folder for its
weaknesses): face-mesh polygons give skin, eyes and mouth interior; a colour model of the face
skin finds neck, ears and forehead skin outside the mesh (above the chin only pixels nearer the
skin colour than the colour above the face, i.e. the hair's); the remaining foreground above the
chin is hair; below the chin clothes, except hair-coloured pixels beside the neck just under the chin.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from nha_bench.datasets.format import LABELS

SKIN, EYES, EARS, HAIR, MOUTH, CLOTHES = 1, 2, 3, 4, 5, 6
assert LABELS[SKIN] == "skin_neck" and LABELS[EARS] == "ears" and LABELS[CLOTHES] == "clothes"
SKIN_DISTANCE = 3.0  # Mahalanobis distance (Lab) below which a pixel counts as skin-coloured
HAIR_SKIN_SEPARATION = 1.0  # the hair colour model competes with the skin model when its mean is this far from skin
FALLBACK_ID = "nha_bench fallback parsing (face-mesh polygons + Lab skin vs hair colour models + selfie mask)"

CHIN, BROW_L, BROW_R, NOSE_BOTTOM, MOUTH_L, MOUTH_R = 152, 105, 334, 2, 61, 291


def _loops(edges: frozenset[tuple[int, int]]) -> list[list[int]]:
    """Closed vertex loops of an undirected edge set (each vertex has degree 2)."""
    nbrs: dict[int, list[int]] = {}
    for a, b in edges:
        nbrs.setdefault(a, []).append(b)
        nbrs.setdefault(b, []).append(a)
    loops, seen = [], set()
    for start in nbrs:
        if start in seen:
            continue
        loop, prev, cur = [start], None, start
        seen.add(start)
        while True:
            nxt = next((v for v in nbrs[cur] if v != prev and v not in seen), None)
            if nxt is None:
                break
            loop.append(nxt)
            seen.add(nxt)
            prev, cur = cur, nxt
        loops.append(loop)
    return loops


@lru_cache(maxsize=1)
def mesh_regions() -> dict[str, list[list[int]]]:
    """Face-mesh vertex loops: face oval, the two eyes and the inner lip contour."""
    from mediapipe.python.solutions import face_mesh_connections as fmc

    lips = sorted(_loops(fmc.FACEMESH_LIPS), key=len)
    return {
        "oval": _loops(fmc.FACEMESH_FACE_OVAL),
        "eyes": _loops(fmc.FACEMESH_LEFT_EYE) + _loops(fmc.FACEMESH_RIGHT_EYE),
        # both lip loops have 20 vertices; the inner one encloses the smaller area (picked per frame)
        "lips": lips,
    }


def _poly(shape: tuple[int, int], pts: np.ndarray, loops: list[list[int]]) -> np.ndarray:
    canvas = np.zeros(shape, np.uint8)
    for loop in loops:
        cv2.fillPoly(canvas, [np.round(pts[loop, :2] * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return canvas.astype(bool)


def _gauss(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    if len(samples) < 50:
        return None
    mean = samples.mean(axis=0)
    cov = np.cov(samples.T) + np.eye(samples.shape[1]) * 4.0  # floor: flat regions give singular covariances
    return mean, np.linalg.inv(cov)


def _mahal(pixels: np.ndarray, model: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    d = pixels - model[0]
    return np.sqrt(np.einsum("...i,ij,...j->...", d, model[1], d))


def fallback_parsing(rgb: np.ndarray, mask: np.ndarray, mesh: np.ndarray | None) -> np.ndarray:
    """(H, W) uint8 labels from an RGB uint8 crop, its foreground mask and the face mesh (468, 3)
    in crop pixels (None: no face, every foreground pixel becomes hair/clothes by height)."""
    h, w = mask.shape
    labels = np.zeros((h, w), np.uint8)
    if mesh is None:
        labels[mask] = CLOTHES
        labels[: h // 2][mask[: h // 2]] = HAIR
        return labels
    regions = mesh_regions()
    face = _poly((h, w), mesh, regions["oval"])
    eyes = _poly((h, w), mesh, regions["eyes"])
    lip_masks = [_poly((h, w), mesh, [loop]) for loop in regions["lips"]]
    mouth = min(lip_masks, key=lambda m: m.sum())
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    inner = cv2.erode(face.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & ~eyes & ~mouth & mask
    outside = mask & ~face
    ys, xs = np.arange(h)[:, None], np.arange(w)[None, :]
    chin_y = mesh[CHIN, 1]
    brow_y = min(mesh[BROW_L, 1], mesh[BROW_R, 1])
    mouth_y = max(mesh[MOUTH_L, 1], mesh[MOUTH_R, 1])
    oval = mesh[np.unique(np.concatenate(regions["oval"]))]
    face_w = oval[:, 0].max() - oval[:, 0].min()
    face_top = oval[:, 1].min()

    skin_model = _gauss(lab[inner])
    hair_model = _gauss(lab[outside & (ys < face_top)])  # the foreground above the face: mostly hair
    skin_like = np.zeros_like(mask)
    if skin_model is not None:  # only pixels outside the face need the colour test
        d_skin = _mahal(lab[outside], skin_model)
        skin_like[outside] = d_skin < SKIN_DISTANCE
        if hair_model is not None and _mahal(hair_model[0], skin_model) >= HAIR_SKIN_SEPARATION:
            # light brown or blond hair passes the skin threshold: above the chin a pixel must also
            # be nearer the skin colour than the hair colour (skipped when the region above the
            # face is skin itself; below the chin shadowed neck skin would lose to dark hair)
            below_chin = np.broadcast_to(ys >= chin_y, mask.shape)[outside]
            skin_like[outside] &= (d_skin < _mahal(lab[outside], hair_model)) | below_chin

    # ears: skin-coloured, beside the face oval between brow and mouth height, within 0.3 face widths
    row_band = (ys > brow_y) & (ys < mouth_y)
    side = (xs < oval[:, 0].min() + 0.05 * face_w) | (xs > oval[:, 0].max() - 0.05 * face_w)
    near = (xs > oval[:, 0].min() - 0.3 * face_w) & (xs < oval[:, 0].max() + 0.3 * face_w)
    near_x = (xs > oval[:, 0].min()) & (xs < oval[:, 0].max())
    ears = outside & skin_like & row_band & side & near

    labels[outside & skin_like] = SKIN  # neck, forehead above the mesh, hands
    labels[ears] = EARS
    rest = outside & ~skin_like
    above = ys < chin_y
    labels[rest & above] = HAIR
    below = rest & ~above
    labels[below] = CLOTHES
    # hair hanging beside the neck: below the chin, beside the face oval, not lower than half a face
    # width under the chin, and closer in colour to the hair above the face than to the clothes
    beside = below & ~near_x & (ys < chin_y + 0.5 * face_w)
    clothes_model = _gauss(lab[rest & (ys > chin_y + 0.5 * face_w)])
    if hair_model is not None and clothes_model is not None and beside.any():
        is_hair = _mahal(lab[beside], hair_model) < _mahal(lab[beside], clothes_model)
        labels[beside] = np.where(is_hair, HAIR, CLOTHES)
    labels = cv2.medianBlur(labels, 5)  # removes isolated colour-classification specks
    labels[face] = SKIN
    labels[eyes] = EYES
    labels[mouth] = MOUTH
    labels[~mask] = 0
    unlabeled = mask & (labels == 0)  # foreground pixels the median filter took from the background
    labels[unlabeled & above] = HAIR
    labels[unlabeled & ~above] = CLOTHES
    return labels
