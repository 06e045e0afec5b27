"""Tracker: camera convention, SH basis, keyframe choice, and tracking a scene rendered from known
head-model parameters (recovered landmarks and pose are compared with the truth)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nha_bench.datasets import Subject, validate_subject
from nha_bench.errors import DatasetError, ExistsError
from nha_bench.head import HeadParams, load_head_model
from nha_bench.tracking import TrackerConfig, camera_to_model, model_to_camera, track_subject
from nha_bench.tracking import fit as fit_module
from nha_bench.tracking.shading import ambient_sh, sh_basis, shade
from nha_bench.tracking.synthetic import make_synthetic_subject, synthetic_params
from nha_bench.tracking.fit import optimise
from nha_bench.tracking.objective import Energy, Variables
from nha_bench.tracking.tracker import FrameLoader, load_landmarks, select_keyframes

N_FRAMES, SIZE = 4, 128
FAST = TrackerConfig.preset("tiny")  # landmarks only; the photometric stage is tested on its own below


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    root = tmp_path_factory.mktemp("tracking") / "synthetic_subject"
    subject, truth = make_synthetic_subject(root, n_frames=N_FRAMES, size=SIZE, seed=1, with_meshes=False)
    return subject, truth


@pytest.fixture(scope="module")
def tracked(scene):
    subject, truth = scene
    path = track_subject(subject.root, config=FAST, progress=False)
    with np.load(path) as d:
        return {k: d[k] for k in d.files}


def test_model_to_camera_flips_y_and_z_then_translates():
    v = torch.tensor([[[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]]])
    t = torch.tensor([[0.1, 0.2, 0.6]])
    expected = torch.tensor([[[1.1, -1.8, -2.4], [0.1, 1.2, 0.1]]])
    assert torch.allclose(model_to_camera(v, t), expected)
    assert torch.allclose(camera_to_model(model_to_camera(v, t), t), v)


def test_model_frame_face_looks_at_the_camera():
    """The nose tip (landmark 30) must be nearer to the camera than the ears' landmarks 0/16."""
    model = load_head_model("ict")
    params = HeadParams.zeros(model, 1)
    lm = model_to_camera(model.landmarks(model(params)), torch.tensor([[0.0, 0.0, 0.6]]))[0]
    assert lm[30, 2] < lm[0, 2] and lm[30, 2] < lm[16, 2]
    assert lm[8, 1] > lm[27, 1]  # chin below the nose bridge: image y grows downwards


def test_sh_basis_is_orthonormal_on_the_sphere():
    g = torch.Generator().manual_seed(0)
    n = torch.nn.functional.normalize(torch.randn(400_000, 3, generator=g), dim=-1)
    y = sh_basis(n)
    gram = 4 * math.pi * (y.T @ y) / len(n)  # Monte Carlo integral over the sphere
    assert torch.allclose(gram, torch.eye(9), atol=0.02)


def test_ambient_sh_shades_every_normal_to_one():
    n = torch.nn.functional.normalize(torch.randn(2, 50, 3), dim=-1)
    assert torch.allclose(shade(n, ambient_sh(2)), torch.ones(2, 50, 3), atol=1e-5)


def test_keyframes_cover_distinct_layouts():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(68, 2)) * 20 + 64
    other = base.copy()
    other[:, 0] = 128 - other[:, 0] ** 1.1  # a clearly different layout
    lm = np.stack([base + rng.normal(size=(68, 2)) * 0.1 for _ in range(5)] + [other])
    lm = np.concatenate([lm, np.ones((6, 68, 1))], -1)
    chosen = select_keyframes(lm, list(range(6)), 2)
    assert 5 in chosen and len(chosen) == 2


def test_tracking_recovers_landmarks_and_pose(scene, tracked):
    subject, truth = scene
    assert validate_subject(subject.root) == []
    model = load_head_model("ict")
    assert tracked["expr"].shape == (N_FRAMES, model.n_expr)
    assert tracked["pose"].shape == (N_FRAMES, 15) and tracked["translation"].shape == (N_FRAMES, 3)
    assert tracked["albedo"].shape == (model.n_vertices, 3) and tracked["sh"].shape == (N_FRAMES, 9, 3)
    assert float(tracked["landmark_error_px"].max()) < 3.0
    # without the photometric term the albedo is the keyframes' mean skin colour
    keys = tracked["keyframes"].tolist()
    skin = np.concatenate([subject.rgb(i)[subject.parsing(i) == 1] for i in keys])
    assert np.allclose(tracked["albedo"], skin.mean(0), atol=0.03)
    assert str(tracked["model"]) == "ict"
    # landmark error recomputed here from the written parameters, independently of the tracker
    params = HeadParams.from_numpy_dict(
        {"shape": np.repeat(tracked["shape"][None], N_FRAMES, 0), **{k: tracked[k] for k in ("expr", "pose", "translation")}}
    )
    from nha_bench.render import project
    from nha_bench.tracking import head_vertices_camera

    with torch.no_grad():
        px = project(model.landmarks(head_vertices_camera(model, params)), truth["K"])
    err = (px - truth["landmarks"]).norm(dim=-1).mean(-1)
    assert float(err.max()) < 3.0, err  # pixels in a 128-px image
    assert np.allclose(err.numpy(), tracked["landmark_error_px"], atol=0.05)
    gt = truth["params"]
    rot_err = np.degrees(np.abs(tracked["pose"][:, :3] - gt.pose[:, :3].numpy())).max()
    assert rot_err < 4.0
    # image-plane position of the head is well determined; depth trades off against head size
    xy_over_z = tracked["translation"][:, :2] / tracked["translation"][:, 2:]
    gt_xy_over_z = (gt.translation[:, :2] / gt.translation[:, 2:]).numpy()
    assert np.abs(xy_over_z - gt_xy_over_z).max() < 0.02
    assert np.abs(tracked["translation"][:, 2] / gt.translation[:, 2].numpy() - 1).max() < 0.1


def test_photometric_stage_recovers_appearance(scene):
    """With the true geometry, fitting albedo and SH lighting must explain the image: the
    photometric error falls well below that of the flat initial albedo."""
    subject, truth = scene
    config = TrackerConfig.preset("tiny").with_(photometric=True, render_scale=0.5)
    model = load_head_model("ict")
    energy = Energy(model, config)
    landmarks = load_landmarks(subject)
    targets = FrameLoader(subject, landmarks, config, "cpu")([0, 1])
    p = truth["params"]
    var = Variables.initial(model, 2, "cpu")
    var.shape, var.expr, var.translation = p.shape[:1], p.expr[:2], p.translation[:2]
    var.rotation, var.jaw = p.pose[:2, 0:3], p.pose[:2, 6:9]
    var.albedo = targets.rgb[targets.region].mean(0).expand_as(var.albedo).clone()
    with torch.no_grad():
        before = float(energy.photo_loss(energy.vertices(var), var, targets))
    optimise(energy, var, targets, ("albedo", "sh"), 25, photometric=True)
    with torch.no_grad():
        after = float(energy.photo_loss(energy.vertices(var), var, targets))
    assert after < 0.5 * before and after < 0.02, (before, after)


def test_existing_tracking_needs_force(scene, tracked):
    subject, _ = scene
    with pytest.raises(ExistsError, match="tracking.npz"):
        track_subject(subject.root, config=FAST, progress=False)


def test_missing_landmarks_names_the_file(tmp_path):
    subject, _ = make_synthetic_subject(tmp_path / "s", n_frames=2, size=32, with_meshes=False)
    (subject.root / "landmarks.npy").unlink()
    with pytest.raises(DatasetError, match="landmarks.npy"):
        track_subject(subject.root, config=FAST, progress=False)


def test_bad_landmark_shape_names_the_file(tmp_path):
    subject, _ = make_synthetic_subject(tmp_path / "s", n_frames=2, size=32, with_meshes=False)
    np.save(subject.root / "landmarks.npy", np.zeros((2, 5, 3), np.float32))
    with pytest.raises(DatasetError, match=r"expected \(2, 68, 3\).*landmarks.npy"):
        track_subject(subject.root, config=FAST, progress=False)


def test_killed_run_resumes_from_checkpoint(tmp_path, monkeypatch):
    subject, _ = make_synthetic_subject(tmp_path / "s", n_frames=4, size=64, with_meshes=False)
    config = FAST.with_(photometric=False, checkpoint_every=2, keyframe_landmark_iters=10, frame_iters=2)
    real = fit_module.track_frame
    calls = []

    def dying(*args, **kw):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kw)

    monkeypatch.setattr("nha_bench.tracking.tracker.track_frame", dying)
    with pytest.raises(KeyboardInterrupt):
        track_subject(subject.root, config=config, progress=False)
    assert (subject.root / ".tracking_partial.npz").is_file() and not (subject.root / "tracking.npz").exists()
    calls.clear()
    monkeypatch.setattr("nha_bench.tracking.tracker.track_frame", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    track_subject(subject.root, config=config, progress=False)
    assert len(calls) == 2  # frames 2 and 3 only: 0 and 1 came from the checkpoint
    assert not (subject.root / ".tracking_partial.npz").exists()
    assert Subject(subject.root).tracking()["expr"].shape[0] == 4


def test_synthetic_params_are_smooth():
    model = load_head_model("ict")
    p = synthetic_params(model, 10)
    assert np.degrees(p.pose[1:, :3] - p.pose[:-1, :3]).abs().max() < 5
