"""Head-model frame <-> OpenCV camera frame: the one place where the convention lives.

Head models work in metres with y up and z towards the viewer; cameras are OpenCV-style (x right,
y down, z forward). The head's global rotation is part of the head model's pose (``pose[:, 0:3]``),
so the camera transform is a fixed axis flip followed by the tracked translation:

    v_cam = diag(1, -1, -1) @ v_model + translation
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from nha_bench.head.base import HeadModel, HeadParams

FLIP = (1.0, -1.0, -1.0)
"""Diagonal of the model->camera axis flip (its own inverse)."""


def _flip(x: Tensor) -> Tensor:
    return x * x.new_tensor(FLIP)


def model_to_camera(vertices: Tensor, translation: Tensor) -> Tensor:
    """Head-model vertices (B, V, 3) + translation (B, 3) -> OpenCV camera-frame points (B, V, 3)."""
    return _flip(vertices) + translation[:, None, :]


def camera_to_model(points: Tensor, translation: Tensor) -> Tensor:
    """Inverse of :func:`model_to_camera`."""
    return _flip(points - translation[:, None, :])


def directions_to_camera(directions: Tensor) -> Tensor:
    """Model-frame directions (normals) (..., 3) -> camera frame (no translation)."""
    return _flip(directions)


def head_vertices_camera(model: "HeadModel", params: "HeadParams") -> Tensor:
    """Posed head-model vertices (B, V, 3) in the OpenCV camera frame, metres.

    The tracked ``translation`` is a camera-frame offset applied after the flip, so the model is
    evaluated with zero translation and :func:`model_to_camera` adds it.
    """
    from nha_bench.head.base import HeadParams

    centred = HeadParams(params.shape, params.expr, params.pose, torch.zeros_like(params.translation))
    return model_to_camera(model(centred), params.translation)
