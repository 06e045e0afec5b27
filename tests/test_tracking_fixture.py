"""The tracker fits the built-in tiny dataset (MakeHuman fixture) on CPU."""

from __future__ import annotations

import shutil

import numpy as np
import torch
from typer.testing import CliRunner

from nha_bench.cli import app
from nha_bench.datasets import Subject, validate_subject
from nha_bench.datasets.catalog import TINY_ROOT
from nha_bench.head import load_head_model
from nha_bench.head.base import HeadParams
from nha_bench.render import project
from nha_bench.tracking.camera import head_vertices_camera


def test_tracker_fits_the_builtin_tiny_dataset(tmp_path):
    root = tmp_path / "subject_f1"
    shutil.copytree(TINY_ROOT / "subject_f1", root)
    (root / "tracking.npz").unlink()
    cli = CliRunner()
    result = cli.invoke(app, ["data", "track", str(tmp_path), "--preset", "tiny", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert validate_subject(root) == []
    again = cli.invoke(app, ["data", "track", str(tmp_path), "--preset", "tiny", "--device", "cpu"])
    assert again.exit_code == 0 and "tracked already" in again.output  # nothing is overwritten without --force
    subject = Subject(root)
    data = subject.tracking()
    # Independent check: project the tracked model's landmark points and compare with the GT landmarks.
    model = load_head_model(str(data["model"]))
    n = subject.meta.n_frames
    params = HeadParams(
        shape=torch.as_tensor(data["shape"]).expand(n, -1),
        expr=torch.as_tensor(data["expr"]),
        pose=torch.as_tensor(data["pose"]),
        translation=torch.as_tensor(data["translation"]),
    )
    with torch.no_grad():
        verts = head_vertices_camera(model, params)
        uv = project(model.landmarks(verts), torch.as_tensor(subject.meta.K).expand(n, 3, 3)).numpy()
    gt = subject.landmarks()
    visible = gt[..., 2] > 0.5
    error = np.linalg.norm(uv - gt[..., :2], axis=-1)[visible]
    assert error.mean() < 2.5, error.mean()  # pixels at 128 x 128 (measured: ~1 px)
