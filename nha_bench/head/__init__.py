"""Head models with FLAME semantics: the shipped ICT-FaceKit model, a user FLAME file, NHA's edits."""

from __future__ import annotations

from nha_bench.head import flame, ict  # noqa: F401  (register "flame", "ict")
from nha_bench.head.base import N_POSE, HeadModel, HeadParams
from nha_bench.registry import HEAD_MODELS


def load_head_model(name: str = "ict", **kw) -> HeadModel:
    """Build the head model registered as ``name`` (``"ict"`` default; ``"flame"`` needs a path)."""
    return HEAD_MODELS.get(name)(**kw)


__all__ = ["N_POSE", "HeadModel", "HeadParams", "load_head_model"]
