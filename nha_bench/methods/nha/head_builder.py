"""The head model NHA deforms: the subject's tracked model with NHA's mesh edits."""

from __future__ import annotations

from nha_bench.datasets.format import Subject
from nha_bench.head import close_mouth, load_head_model, nha_topology, remove_lower_neck
from nha_bench.head.base import HeadModel


def tracked_model_name(subject: Subject) -> str:
    """Head model named in tracking.npz (key ``model``), ``ict`` when absent."""
    data = subject.tracking()
    return str(data["model"]) if "model" in data else "ict"


def build_head(subject: Subject, n_shape: int, n_expr: int, subdivide: bool) -> tuple[HeadModel, str]:
    """The tracked head model with NHA's edits (lower neck removed, mouth closed, and with
    ``subdivide`` one four-way subdivision); returns the model and a note on what was applied."""
    name = tracked_model_name(subject)
    base = load_head_model(name, n_shape=n_shape, n_expr=n_expr)
    if subdivide:
        model, what = nha_topology(base), "lower neck removed, mouth closed, 4-way subdivided"
    else:
        model, what = close_mouth(remove_lower_neck(base)), "lower neck removed, mouth closed, not subdivided (preset)"
    return model, f"head model {name}: {base.n_vertices} -> {model.n_vertices} vertices ({what})"
