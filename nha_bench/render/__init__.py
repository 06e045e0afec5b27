"""Differentiable triangle rasterizer in PyTorch (CPU, CUDA) with a Triton visibility kernel on CUDA.

Camera: OpenCV pinhole, x right, y down, z forward; pixel centres at integer + 0.5;
K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] in pixels. Background: face_idx -1, bary 0, depth 0.
Triangles with a vertex at z <= znear (default 1e-3, in the vertices' units) are dropped.
No backface culling unless ``cull_backfaces=True`` (front = counter-clockwise seen from outside).

- ``rasterize``: nearest face per pixel (z-buffer; no gradient), then perspective-correct
  barycentrics and depth recomputed with autograd, so gradients reach the vertices.
- ``interpolate``: per-vertex attributes -> per-pixel, differentiable w.r.t. attributes and vertices.
- ``soft_silhouette``: SoftRas-style per-label coverage (occlusion ignored, or with
  ``depth_tolerance`` a depth test of each face's centroid against the front surface, hidden faces
  going to ``hidden_label``); ``sigma`` in pixels. With ``cull_backfaces=True`` a closed mesh keeps the same
  hard outline, but fewer faces add up near it, so soft values there are lower.
- ``backend``: "auto" (Triton on CUDA, PyTorch otherwise), "torch" or "triton".
"""

from nha_bench.render.camera import project
from nha_bench.render.checks import RenderInputError
from nha_bench.render.normals import vertex_normals
from nha_bench.render.rasterize import Fragments, interpolate, rasterize
from nha_bench.render.soft import soft_silhouette

__all__ = [
    "Fragments",
    "RenderInputError",
    "interpolate",
    "project",
    "rasterize",
    "soft_silhouette",
    "vertex_normals",
]
