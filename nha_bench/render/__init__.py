"""Differentiable triangle rasterizer in PyTorch (CPU, CUDA) with a Triton visibility kernel on CUDA.

Camera: OpenCV pinhole, x right, y down, z forward; pixel centres at integer + 0.5;
K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] in pixels. Background: face_idx -1, bary 0, depth 0.
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
