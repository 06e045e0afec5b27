"""Shared test helpers: a small procedurally made subject in the dataset format, and the scripts/ loader."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import trimesh

from nha_bench.datasets import SubjectMeta, SubjectWriter
from nha_bench.mesh import Mesh


def load_script(name: str) -> ModuleType:
    """The module of ``scripts/NAME.py`` (the scripts are not a package)."""
    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_subject(root: Path, n_frames: int = 6, size: int = 48, seed: int = 0) -> Path:
    """A subject with a textured disc 'head' on black, GT normals of a sphere cap and GT meshes."""
    rng = np.random.default_rng(seed)
    writer = SubjectWriter(root)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=80.0)
    for i in range(n_frames):
        cx = size / 2 + 2 * np.sin(i)
        r = ((xx - cx) ** 2 + (yy - size / 2) ** 2) / (0.35 * size) ** 2
        mask = r < 1
        rgb = np.zeros((size, size, 3))
        rgb[mask] = 0.3 + 0.4 * rng.random((mask.sum(), 3))
        normal = np.zeros((size, size, 3))
        nz = np.sqrt(np.clip(1 - r, 0, 1))
        normal[..., 0] = (xx - cx) / (0.35 * size)
        normal[..., 1] = (yy - size / 2) / (0.35 * size)
        normal[..., 2] = -nz
        normal[~mask] = 0
        verts = sphere.vertices + np.array([0, 0, 600.0])
        face = verts[:, 2] < 560
        writer.write_frame(
            i,
            rgb=rgb,
            mask=mask,
            parsing=mask.astype(np.uint8),
            normal=normal,
            mesh=Mesh(verts, sphere.faces, {"face": face, "head": np.ones(len(verts), bool)}),
        )
    landmarks = np.zeros((n_frames, 68, 3), np.float32)
    landmarks[..., :2] = size / 2
    landmarks[..., 2] = 1
    writer.write_array("landmarks", landmarks)
    train = list(range(0, n_frames, 2))
    val = list(range(1, n_frames, 2))
    meta = SubjectMeta(
        subject=root.name,
        dataset="test",
        fps=25,
        width=size,
        height=size,
        intrinsics=[[size * 2.0, 0, size / 2], [0, size * 2.0, size / 2], [0, 0, 1]],
        n_frames=n_frames,
        splits={"train": train, "val": val},
        source="made by tests/conftest.py",
        license="CC0",
        fields=["rgb", "mask", "parsing", "normal", "mesh"],
    )
    writer.finish(meta)
    return root


@pytest.fixture
def subject_dir(tmp_path: Path) -> Path:
    """A fresh procedurally made subject folder."""
    return make_subject(tmp_path / "data" / "subj_a")
