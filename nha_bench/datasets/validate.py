"""Validation of subject folders: lists every problem with the file it concerns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nha_bench.datasets.format import FRAME_FIELDS, REQUIRED_FIELDS, Subject
from nha_bench.errors import DatasetError


@dataclass(frozen=True)
class Problem:
    """One validation finding."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def find_subjects(path: str | Path) -> list[Path]:
    """Subject folders at or below ``path`` (a folder with meta.json, or its children)."""
    path = Path(path)
    if (path / "meta.json").is_file():
        return [path]
    return sorted(p.parent for p in path.glob("*/meta.json"))


def _check_frame(subject: Subject, field_name: str, index: int) -> str | None:
    loaders = {
        "rgb": subject.rgb,
        "mask": subject.mask,
        "parsing": subject.parsing,
        "normal": subject.normal,
        "mesh": subject.mesh,
    }
    try:
        value = loaders[field_name](index)
    except DatasetError as exc:
        return str(exc).split(" | ")[0]
    if field_name == "mask" and not value.any():
        return "mask is empty"
    if field_name == "mesh":
        missing = {"face", "head"} - set(value.vertex_masks)
        if missing:
            return f"mesh lacks vertex masks {sorted(missing)}"
    return None


def validate_subject(root: str | Path) -> list[Problem]:
    """All problems of one subject folder (empty list = valid)."""
    root = Path(root)
    try:
        subject = Subject(root)
    except DatasetError as exc:
        return [Problem(exc.path or root, str(exc).split(" | ")[0])]
    meta, problems = subject.meta, []
    meta_path = root / "meta.json"
    K = meta.K
    if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
        problems.append(Problem(meta_path, f"intrinsics must be a finite 3x3 matrix with fx, fy > 0, got {K.tolist()}"))
    for required in REQUIRED_FIELDS:
        if required not in meta.fields:
            problems.append(Problem(meta_path, f"required field {required!r} missing from 'fields'"))
    unknown = set(meta.fields) - set(FRAME_FIELDS)
    if unknown:
        problems.append(Problem(meta_path, f"unknown fields {sorted(unknown)}"))
    seen: set[int] = set()
    for split, indices in meta.splits.items():
        bad = [i for i in indices if not 0 <= i < meta.n_frames]
        if bad:
            problems.append(Problem(meta_path, f"split {split!r} has indices outside 0..{meta.n_frames - 1}: {bad[:5]}"))
        overlap = seen & set(indices)
        if overlap:
            problems.append(Problem(meta_path, f"split {split!r} overlaps another split in {len(overlap)} frames"))
        seen |= set(indices)
    frames = sorted(seen)
    for field_name in [f for f in meta.fields if f in FRAME_FIELDS]:
        for index in frames:
            message = _check_frame(subject, field_name, index)
            if message:
                problems.append(Problem(subject.path(field_name, index), message))
    problems += _check_array(root / "landmarks.npy", (meta.n_frames, 68, 3), required=True)
    tracking = root / "tracking.npz"
    if tracking.is_file():
        try:
            data = subject.tracking()
            for key in ("expr", "pose", "translation"):
                if key not in data or len(data[key]) != meta.n_frames:
                    problems.append(Problem(tracking, f"{key!r} must have one row per frame ({meta.n_frames})"))
                elif not np.isfinite(data[key]).all():
                    problems.append(Problem(tracking, f"{key!r} contains NaN or inf"))
        except DatasetError as exc:
            problems.append(Problem(tracking, str(exc).split(" | ")[0]))
    return problems


def _check_array(path: Path, shape: tuple[int, ...], required: bool) -> list[Problem]:
    if not path.is_file():
        return [Problem(path, "file is missing")] if required else []
    try:
        array = np.load(path)
    except ValueError as exc:
        return [Problem(path, f"cannot read ({exc})")]
    if array.shape != shape:
        return [Problem(path, f"shape {array.shape}, expected {shape}")]
    if not np.isfinite(array).all():
        return [Problem(path, "contains NaN or inf")]
    return []
