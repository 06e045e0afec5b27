"""Builds a small synthetic subject for the NHA tests: the ICT head rendered by nha_bench.render.

Colours come from a smooth function of the canonical position with Lambert shading, parsing from
the head-model regions, landmarks from the landmark embedding; tracking.npz holds the true
parameters plus noise, so a fit has something to correct.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from nha_bench.datasets.format import SubjectMeta, SubjectWriter
from nha_bench.head import load_head_model
from nha_bench.head.base import HeadParams
from nha_bench.mesh import Mesh
from nha_bench.methods.nha.avatar import PARSING_OF_SEMANTIC, face_semantic_labels
from nha_bench.render import interpolate, project, rasterize, vertex_normals
from nha_bench.tracking.camera import head_vertices_camera

SIZE = 64
N_SHAPE, N_EXPR = 8, 8


def make_subject(
    root: Path, n_frames: int = 6, with_normals: bool = True, seed: int = 0, size: int = SIZE, n_train: int = 4
) -> Path:
    """Write a ``size``-pixel square subject with ``n_frames`` frames (first ``n_train`` train, the
    rest val) under ``root``."""
    g = torch.Generator().manual_seed(seed)
    head = load_head_model("ict", n_shape=N_SHAPE, n_expr=N_EXPR)
    s = size / SIZE
    K = torch.tensor([[110.0 * s, 0, size / 2], [0, 110.0 * s, size / 2 - 4 * s], [0, 0, 1]])
    shape = torch.randn(1, N_SHAPE, generator=g).expand(n_frames, -1) * 0.5
    expr = torch.rand(n_frames, N_EXPR, generator=g) * 0.5
    pose = torch.zeros(n_frames, 15)
    pose[:, 0:3] = (torch.rand(n_frames, 3, generator=g) - 0.5) * 0.3
    pose[:, 6] = torch.rand(n_frames, generator=g) * 0.15  # jaw
    trans = torch.tensor([0.0, 0.03, 0.8]).expand(n_frames, 3).clone()
    params = HeadParams(shape, expr, pose, trans)
    with torch.no_grad():
        verts = head_vertices_camera(head, params)
        frags = rasterize(verts, head.faces, K, size, size)
        normals = interpolate(vertex_normals(verts, head.faces), head.faces, frags)
        normals = normals / normals.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        canon = interpolate(head.canonical_vertices, head.faces, frags)
        albedo = 0.5 + 0.4 * torch.sin(canon * torch.tensor([40.0, 25.0, 30.0]))
        light = (-normals[..., 2:3]).clamp(0, 1) * 0.7 + 0.3
        cover = frags.mask
        rgb = (albedo * light) * cover[..., None]
        labels = torch.tensor(PARSING_OF_SEMANTIC)[face_semantic_labels(head.faces, head.regions)]
        labels[head.regions["lower_neck"][head.faces].any(1)] = 6  # the lower neck counts as clothes
        parsing = torch.where(cover, labels[frags.face_idx.clamp_min(0)], torch.zeros_like(frags.face_idx))
        lmk = project(head.landmarks(verts), K)
    writer = SubjectWriter(root, force=True)
    masks = {k: head.regions[k].numpy() for k in ("face", "head")}
    for i in range(n_frames):
        writer.write_frame(
            i,
            rgb=rgb[i].numpy(),
            mask=cover[i].numpy(),
            parsing=parsing[i].numpy().astype(np.uint8),
            normal=normals[i].numpy() * cover[i, ..., None].numpy() if with_normals else None,
            mesh=Mesh(verts[i].numpy() * 1000.0, head.faces.numpy(), masks),
        )
    lmks = np.concatenate([lmk.numpy(), np.ones((n_frames, 68, 1))], axis=-1).astype(np.float32)
    writer.write_array("landmarks", lmks)
    noisy = {
        "shape": shape[0].numpy() * 0.0,
        "expr": (expr + 0.1 * torch.randn(expr.shape, generator=g)).numpy(),
        "pose": (pose + 0.02 * torch.randn(pose.shape, generator=g)).numpy(),
        "translation": trans.numpy(),
        "model": np.array("ict"),
    }
    writer.write_arrays("tracking", noisy)
    fields = ["rgb", "mask", "parsing", "mesh"] + (["normal"] if with_normals else [])
    meta = SubjectMeta(
        subject=root.name, dataset="nha_test", fps=25.0, width=size, height=size,
        intrinsics=K.tolist(), n_frames=n_frames,
        splits={"train": list(range(n_train)), "val": list(range(n_train, n_frames))},
        source="tests/nha_tiny_subject.py", license="CC0", fields=fields,
    )
    writer.finish(meta)
    return root
