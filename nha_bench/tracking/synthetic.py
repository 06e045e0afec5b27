"""A synthetic subject rendered from the head model itself, with known parameters: the tracker's
ground-truth check (tests, GPU smoke runs). Not a benchmark dataset (see datasets/synthetic)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from nha_bench.datasets.format import Subject, SubjectMeta, SubjectWriter
from nha_bench.head import load_head_model
from nha_bench.head.base import HeadModel, HeadParams, scored_face_mask
from nha_bench.mesh import Mesh
from nha_bench.render import project
from nha_bench.tracking.camera import head_vertices_camera
from nha_bench.tracking.objective import render_shaded
from nha_bench.tracking.shading import ambient_sh

# parsing label per head-model region (nha_bench.datasets.format.LABELS); later entries win
REGION_LABELS = (("head", 1), ("neck", 1), ("scalp", 4), ("ears", 3), ("mouth", 5), ("eyes", 2))


def synthetic_params(
    model: HeadModel, n_frames: int, seed: int = 0, distance: float = 0.6, cycles: float = 0.3
) -> HeadParams:
    """A smooth random sequence: one identity, slowly varying expression, head rotation and
    translation; the head motion runs through ``cycles`` periods over the sequence."""
    g = torch.Generator().manual_seed(seed)
    t = torch.linspace(0, cycles, n_frames)[:, None]
    params = HeadParams.zeros(model, n_frames)
    params.shape = (torch.randn(1, model.n_shape, generator=g) * 0.7).expand(n_frames, -1).clone()
    e0, e1 = torch.rand(2, 1, model.n_expr, generator=g) * 0.3
    params.expr = e0 + (e1 - e0) * t / cycles
    yaw = torch.sin(2 * math.pi * t[:, 0]) * math.radians(20)
    pitch = torch.sin(2 * math.pi * t[:, 0] + 1.0) * math.radians(8)
    params.pose[:, 0], params.pose[:, 1] = pitch, yaw
    params.pose[:, 6] = 0.08 * (1 + torch.sin(4 * math.pi * t[:, 0]))  # jaw opening
    params.translation = torch.stack(
        [0.01 * torch.sin(2 * math.pi * t[:, 0]), 0.005 * torch.cos(2 * math.pi * t[:, 0]), distance + 0.02 * t[:, 0]], -1
    )
    return params


def synthetic_albedo(model: HeadModel) -> torch.Tensor:
    """Smooth skin-like per-vertex albedo (V, 3) varying over the head."""
    v = model.canonical_vertices
    base = torch.tensor([0.75, 0.55, 0.45])
    wave = 0.08 * torch.sin(v[:, :1] * 40.0) + 0.06 * torch.cos(v[:, 1:2] * 30.0)
    return (base + wave).clamp(0, 1)


def synthetic_sh(n_frames: int) -> torch.Tensor:
    """Ambient light plus a key light from the upper left (camera frame), (N, 9, 3)."""
    sh = ambient_sh(n_frames) * 0.8
    sh[:, 3] = 0.3  # x
    sh[:, 1] = -0.3  # y (camera y points down: light from above)
    sh[:, 2] = -0.4  # z (towards the camera)
    return sh


def make_synthetic_subject(
    root: str | Path, n_frames: int = 6, size: int = 256, seed: int = 0, head_model: str = "ict", with_meshes: bool = True
) -> tuple[Subject, dict[str, torch.Tensor]]:
    """Render a subject (rgb, mask, parsing, normal, mesh, landmarks) from known head-model
    parameters; returns it and the ground truth (params, albedo, sh, landmarks)."""
    model = load_head_model(head_model)
    params = synthetic_params(model, n_frames, seed)
    albedo, sh = synthetic_albedo(model), synthetic_sh(n_frames)
    f = 1.6 * size
    K = torch.tensor([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1.0]])
    labels = torch.zeros(model.n_vertices, dtype=torch.uint8)
    for region, label in REGION_LABELS:
        labels[model.regions[region]] = label
    face_labels = labels[model.faces].max(-1).values  # a face takes its highest vertex label
    writer = SubjectWriter(root, force=True)
    with torch.no_grad():
        verts = head_vertices_camera(model, params)
        colour, normals, frag = render_shaded(verts, model.faces, albedo, sh, K, (size, size))
        landmarks = project(model.landmarks(verts), K)
    masks = {"face": scored_face_mask(model), "head": model.regions["head"].numpy()}
    for i in range(n_frames):
        fg = frag.mask[i].numpy()
        parsing = np.where(fg, face_labels[frag.face_idx[i].clamp_min(0)].numpy(), 0).astype(np.uint8)
        mesh = Mesh(verts[i].numpy() * 1e3, model.faces.numpy(), masks)
        writer.write_frame(
            i, rgb=np.where(fg[..., None], colour[i].clamp(0, 1).numpy(), 0.0), mask=fg, parsing=parsing,
            normal=np.where(fg[..., None], normals[i].numpy(), 0.0), mesh=mesh if with_meshes else None,
        )
    lm = torch.cat([landmarks, torch.ones(n_frames, 68, 1)], -1).numpy().astype(np.float32)
    writer.write_array("landmarks", lm)
    n_train = max(1, (2 * n_frames) // 3)
    fields = ["rgb", "mask", "parsing", "normal"] + (["mesh"] if with_meshes else [])
    meta = SubjectMeta(
        subject=Path(root).name, dataset="tracking-synthetic", fps=25.0, width=size, height=size,
        intrinsics=K.tolist(), n_frames=n_frames,
        splits={"train": list(range(n_train)), "val": list(range(n_train, n_frames))},
        source=f"nha_bench.tracking.synthetic (head model {head_model!r}, seed {seed})", license="MIT",
        fields=fields, models={"landmarks": "ground truth", "parsing": "ground truth"},
    )
    return writer.finish(meta), {"params": params, "albedo": albedo, "sh": sh, "landmarks": landmarks, "K": K}
