"""Per-vertex mesh error maps (paper Figure 4): a method's test meshes, aligned as the Hausdorff
metric aligns them, coloured by their mean distance to the ground-truth surface over all test frames
(the surface ``hausdorff_full`` measures against).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from nha_bench.datasets.format import Subject
from nha_bench.metrics.geometry import HausdorffFull, align_to_head, point_surface_distances, region_mesh, transform
from nha_bench.outputs import read_mesh
from nha_bench.render import interpolate, rasterize

ERROR_RANGE_MM = (0.0, 20.0)
"""Colour scale of the maps: 0 mm blue -> 20 mm and more red (matplotlib's turbo)."""


def mean_vertex_error(outputs: Path, subject: Subject, split: str = "val") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vertices of the first test mesh after its alignment, faces, per-vertex error in mm averaged
    over the split's frames). All test meshes of a method share one topology."""
    errors, first = [], None
    for index in subject.split(split):
        pred, target = read_mesh(outputs, index), subject.mesh(index)
        _, matrix, _ = align_to_head(pred, target)
        moved = transform(np.asarray(pred.vertices, dtype=np.float64), matrix)
        surface = region_mesh(target, HausdorffFull.target_region, "ground truth")
        errors.append(point_surface_distances(moved, surface.vertices, surface.faces))
        if first is None:
            first = (moved, np.asarray(pred.faces))
    return first[0], first[1], np.mean(errors, axis=0)


def render_error(vertices: np.ndarray, faces: np.ndarray, error: np.ndarray, size: int = 256,
                 yaw_deg: float = 0.0) -> np.ndarray:
    """(size, size, 3) uint8 image of the mesh coloured by ``error`` (white background), seen from
    the camera after turning it by ``yaw_deg`` about its vertical axis through its centroid."""
    import matplotlib

    centre = vertices.mean(axis=0)
    turned = (vertices - centre) @ Rotation.from_euler("y", yaw_deg, degrees=True).as_matrix().T
    extent = np.abs(turned[:, :2]).max() * 1.1
    distance = 4.0 * extent
    cam = turned + np.array([0.0, 0.0, distance])
    focal = size / 2 * distance / extent
    K = torch.tensor([[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1]], dtype=torch.float32)
    lo, hi = ERROR_RANGE_MM
    colours = matplotlib.colormaps["turbo"](np.clip((error - lo) / (hi - lo), 0, 1))[:, :3]
    verts_t = torch.as_tensor(cam, dtype=torch.float32)[None]
    faces_t = torch.as_tensor(faces, dtype=torch.long)
    frags = rasterize(verts_t, faces_t, K, size, size)
    image = interpolate(torch.as_tensor(colours, dtype=torch.float32), faces_t, frags)[0].numpy()
    image = np.where(frags.mask[0].numpy()[..., None], image, 1.0)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def error_sheet(outputs_by_method: dict[str, Path], subject: Subject, size: int = 256) -> tuple[np.ndarray, dict[str, float]]:
    """One row per method: front and side view of its mean error map; returns (image, mean error
    per method over vertices and frames)."""
    rows, means = [], {}
    for method, outputs in outputs_by_method.items():
        vertices, faces, error = mean_vertex_error(outputs, subject)
        means[method] = float(error.mean())
        rows.append(np.concatenate([render_error(vertices, faces, error, size, yaw) for yaw in (0.0, 90.0)], axis=1))
    return np.concatenate(rows, axis=0), means
