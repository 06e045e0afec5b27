"""The tracked-head-model baseline: with the true parameters as its tracking it must reproduce the
scene it was rendered from (images, normals, meshes), and bad tracking files raise named errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from nha_bench.datasets import SubjectWriter
from nha_bench.errors import DatasetError
from nha_bench.method import Sequence
from nha_bench.methods.headmodel import TrackedHeadModel
from nha_bench.registry import METHODS, METRICS
from nha_bench.tracking.synthetic import make_synthetic_subject

N_FRAMES, SIZE = 3, 96


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A synthetic subject whose tracking.npz holds the true parameters, albedo and lighting."""
    subject, truth = make_synthetic_subject(tmp_path_factory.mktemp("hm") / "subj", n_frames=N_FRAMES, size=SIZE, seed=2)
    p = truth["params"].to_numpy_dict()
    SubjectWriter(subject.root, force=True).write_arrays("tracking", {
        "shape": p["shape"][0], "expr": p["expr"], "pose": p["pose"], "translation": p["translation"],
        "model": np.asarray("ict"), "albedo": truth["albedo"].numpy(), "sh": truth["sh"].numpy(),
    })
    return subject


@pytest.fixture(scope="module")
def renders(scene):
    method = METHODS.get("headmodel")()
    method.setup(Sequence(scene, "train"), "tiny", "cpu", 0)
    assert method.num_iterations() == 0
    return method.render(Sequence(scene, "val")), method


def test_registered_with_outputs():
    assert METHODS.get("headmodel") is TrackedHeadModel
    assert TrackedHeadModel.provides == {"rgb", "normal", "mesh"}


def test_rgb_reproduces_the_scene(scene, renders):
    out, _ = renders
    val = Sequence(scene, "val")
    assert out.indices == val.indices and out.rgb.shape == (len(val), SIZE, SIZE, 3)
    gt, mask = val.load("rgb"), val.load("mask")
    assert np.abs(out.rgb - gt)[mask].max() < 1.5 / 255  # 8-bit quantisation of the stored frames
    assert (out.rgb[~mask] == 0).all()  # black outside the head


def test_normals_match_ground_truth(scene, renders):
    out, _ = renders
    val = Sequence(scene, "val")
    gt, mask = val.load("normal"), val.load("mask")
    cos = (out.normal[mask] * gt[mask]).sum(-1)
    assert np.degrees(np.arccos(np.clip(cos, -1, 1))).mean() < 1.0
    assert (out.normal[mask][:, 2] < 0.2).mean() > 0.95  # OpenCV: visible surfaces face -z


def test_meshes_are_millimetres_in_the_camera_frame(scene, renders):
    out, _ = renders
    val = Sequence(scene, "val")
    for i, mesh in zip(val.indices, out.meshes):
        gt = scene.mesh(i)
        assert set(mesh.vertex_masks) >= {"face", "head"}
        # every predicted vertex is a ground-truth vertex (the baseline drops the mouth socket only)
        dist, _ = cKDTree(gt.vertices).query(mesh.vertices)
        assert dist.max() < 1e-3  # mm
        assert 400 < np.linalg.norm(mesh.vertices.mean(0)) < 800  # about 0.6 m from the camera


def test_hausdorff_to_the_true_mesh_is_zero(scene, renders):
    import nha_bench.metrics  # noqa: F401  (registers the geometry metrics)
    from nha_bench.metrics.base import MeshPair

    out, _ = renders
    pairs = [MeshPair(m, scene.mesh(i)) for i, m in zip(out.indices, out.meshes)]
    scores = METRICS.get("hausdorff_full")(n_samples=2000).score(pairs)
    assert np.all(scores.values < 1e-3)


def test_save_load_roundtrip(scene, renders, tmp_path):
    out, method = renders
    method.save(tmp_path)
    again = TrackedHeadModel()
    again.setup(Sequence(scene, "train"), "tiny", "cpu", 0)
    again.load(tmp_path)
    assert np.array_equal(again.render(Sequence(scene, "val")).rgb, out.rgb)


def test_missing_tracking_names_the_file(tmp_path):
    subject, _ = make_synthetic_subject(tmp_path / "s", n_frames=2, size=32, with_meshes=False)
    with pytest.raises(DatasetError, match="tracking.npz"):
        TrackedHeadModel().setup(Sequence(subject, "train"), "tiny", "cpu", 0)


def test_wrong_albedo_size_names_the_file(tmp_path):
    subject, truth = make_synthetic_subject(tmp_path / "s", n_frames=2, size=32, with_meshes=False)
    p = truth["params"].to_numpy_dict()
    SubjectWriter(subject.root, force=True).write_arrays("tracking", {
        "shape": p["shape"][0], "expr": p["expr"], "pose": p["pose"], "translation": p["translation"],
        "model": np.asarray("ict"), "albedo": np.zeros((10, 3), np.float32),
    })
    with pytest.raises(DatasetError, match=r"albedo.*tracking.npz"):
        TrackedHeadModel().setup(Sequence(subject, "train"), "tiny", "cpu", 0)
