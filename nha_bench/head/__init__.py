"""Head models with FLAME semantics: the shipped ICT-FaceKit model, a user FLAME file, NHA's edits.

``load_head_model("ict")`` needs nothing outside the package; ``load_head_model("flame",
path=".../generic_model.pkl", landmark_embedding=..., masks=...)`` reads the user's FLAME files.
``nha_topology(model)`` applies NHA's edits (lower neck removed, mouth closed, subdivided).
"""

from __future__ import annotations

from nha_bench.head import flame, ict  # noqa: F401  (register "flame", "ict")
from nha_bench.head.base import N_POSE, POSE_SLICES, HeadModel, HeadParams, evaluation_surface
from nha_bench.head.edits import EditedHeadModel, close_mouth, nha_topology, remove_lower_neck, subdivide
from nha_bench.registry import HEAD_MODELS


def load_head_model(name: str = "ict", **kw) -> HeadModel:
    """Build the head model registered as ``name`` (``"ict"`` default; ``"flame"`` needs a path)."""
    return HEAD_MODELS.get(name)(**kw)


__all__ = [
    "N_POSE", "POSE_SLICES", "HeadModel", "HeadParams", "EditedHeadModel", "evaluation_surface", "load_head_model",
    "nha_topology", "remove_lower_neck", "close_mouth", "subdivide",
]
