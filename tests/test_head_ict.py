"""The shipped ICT-FaceKit head model: loading, shapes, skinning sanity, gradients, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from nha_bench.errors import NhaBenchError, UnavailableError
from nha_bench.head import N_POSE, HeadParams, load_head_model
from nha_bench.head.base import REGION_NAMES
from nha_bench.head.ict import ASSET, IctHeadModel
from nha_bench.head.lbs import axis_angle_to_matrix

UPSTREAM = Path("/work/shared/ict_facekit")


@pytest.fixture(scope="module")
def model() -> IctHeadModel:
    return load_head_model("ict")


def _params(model, **kw) -> HeadParams:
    p = HeadParams.zeros(model, 1)
    for k, v in kw.items():
        getattr(p, k)[:] = torch.as_tensor(v, dtype=torch.float32)
    return p


def test_asset_is_inside_package_and_small():
    import nha_bench

    assert Path(nha_bench.__file__).parent in ASSET.parents
    assert ASSET.stat().st_size < 15e6
    assert (ASSET.parent / "LICENSE_ICT-FaceKit").read_text().startswith("MIT License")


def test_shapes_and_regions(model):
    p = HeadParams.zeros(model, 3)
    v = model(p)
    nv = model.n_vertices
    assert v.shape == (3, nv, 3) and model.faces.shape[1] == 3
    assert int(model.faces.max()) == nv - 1
    assert model.landmarks(v).shape == (3, 68, 3)
    for k in REGION_NAMES:
        assert model.regions[k].shape == (nv,) and model.regions[k].any(), k
    r = {k: model.regions[k].numpy() for k in REGION_NAMES}
    parts = ["face", "scalp", "ears", "eyes", "neck", "mouth"]
    # the parts partition the mesh except the eye-socket skin inside the face region
    assert sum(r[k].astype(int) for k in parts).max() == 1
    assert r["head"].sum() < nv and not (r["face"] & ~r["head"]).any()
    # frame: metres, y up (forehead above chin), z towards the viewer (nose tip in front)
    cv = model.canonical_vertices.numpy()
    assert 0.1 < np.ptp(cv[r["head"]], axis=0)[1] < 0.4
    lmk = model.landmark_vertices.numpy()
    assert cv[lmk[27], 1] > cv[lmk[8], 1]  # nose bridge above chin
    assert cv[lmk[30], 2] > cv[r["ears"], 2].max()  # nose tip in front of the ears
    assert cv[lmk[36], 0] < 0 < cv[lmk[45], 0]  # image-left eye corner has x < 0 (subject's right)


def test_zero_pose_is_template_plus_blendshapes(model):
    d = np.load(ASSET)
    rng = np.random.default_rng(0)
    beta, psi = rng.normal(size=model.n_shape), rng.normal(size=model.n_expr) * 0.5
    v = model(_params(model, shape=beta[None], expr=psi[None]))[0].detach().numpy()
    ref = (
        d["v_template"].astype(np.float64)
        + np.tensordot(beta, d["identity_mm"].astype(np.float64), 1) * 1e-3
        + np.tensordot(psi, d["expression_mm"].astype(np.float64), 1) * 1e-3
    )
    np.testing.assert_allclose(v, ref, atol=2e-6)
    v0 = model(HeadParams.zeros(model, 1))[0]
    torch.testing.assert_close(v0, model.canonical_vertices, atol=1e-7, rtol=0)


def test_global_rotation_and_translation_are_rigid(model):
    aa, t = np.array([0.2, -0.4, 0.1]), np.array([0.01, -0.02, 0.5])
    v = model(_params(model, pose=np.r_[aa, np.zeros(12)][None], translation=t[None]))[0].double()
    root = model.rest_joints(torch.zeros(1, model.n_shape))[0, 0].double().numpy()
    cv = model.canonical_vertices.double().numpy()
    ref = Rotation.from_rotvec(aa).apply(cv - root) + root + t
    np.testing.assert_allclose(v.numpy(), ref, atol=1e-6)


def test_jaw_moves_chin_not_forehead(model):
    v0 = model.canonical_vertices
    pose = torch.zeros(1, N_POSE)
    pose[0, 6] = 0.3  # open
    d = (model(_params(model, pose=pose))[0] - v0).norm(dim=1)
    lmk = model.landmark_vertices
    chin, upper_lip = d[lmk[8]], d[lmk[51]]
    assert chin > 0.015  # > 1.5 cm for 17 degrees
    assert upper_lip < 0.2 * chin
    forehead = v0[:, 1] > v0[lmk[27], 1]
    assert d[forehead].max() < 1e-5
    # the chin goes down when the jaw opens with a positive x rotation (FLAME's convention)
    assert model(_params(model, pose=pose))[0, lmk[8], 1] < v0[lmk[8], 1] - 0.01


def test_eye_rotation_keeps_eyeballs_on_their_spheres(model):
    eyes = model.regions["eyes"]
    centres = model.rest_joints(torch.zeros(1, model.n_shape))[0, 3:5]
    cv = model.canonical_vertices
    pose = torch.zeros(1, N_POSE)
    pose[0, 9:15] = torch.tensor([0.2, 0.3, 0.0, -0.1, 0.25, 0.05])
    v = model(_params(model, pose=pose))[0]
    for side, c in zip((0, 1), centres):
        idx = eyes & ((cv[:, 0] > 0) == (side == 0))
        r0 = (cv[idx] - c).norm(dim=1)
        r1 = (v[idx] - c).norm(dim=1)
        torch.testing.assert_close(r1, r0, atol=1e-6, rtol=0)
        assert (v[idx] - cv[idx]).norm(dim=1).max() > 2e-3  # the iris actually moved
        rot = axis_angle_to_matrix(pose[0, 9 + 3 * side: 12 + 3 * side])
        torch.testing.assert_close(v[idx] - c, (cv[idx] - c) @ rot.T, atol=1e-6, rtol=0)
    assert (v[~eyes] - cv[~eyes]).abs().max() < 1e-7


def test_landmarks_sit_on_their_vertices(model):
    p = _params(model, shape=torch.randn(1, model.n_shape), pose=0.1 * torch.randn(1, N_POSE))
    v = model(p)
    torch.testing.assert_close(model.landmarks(v)[0], v[0, model.landmark_vertices], atol=1e-7, rtol=0)
    if UPSTREAM.exists():
        up = json.loads((UPSTREAM / "vertex_indices.json").read_text())["idx_to_landmark_verts"]
        ids = np.load(ASSET)["upstream_vertex_ids"]
        assert (ids[model.landmark_vertices.numpy()] == np.array(up)).all()


def test_gradients_reach_every_parameter(model):
    p = HeadParams.zeros(model, 2)
    for t in (p.shape, p.expr, p.pose, p.translation):
        t.requires_grad_(True)
    model(p).square().sum().backward()  # also at the zero pose (Rodrigues is smooth at 0)
    for t in (p.shape, p.expr, p.pose, p.translation):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


def test_params_roundtrip_and_shape_errors(model):
    p = _params(model, shape=torch.randn(1, model.n_shape), pose=torch.randn(1, N_POSE))
    q = HeadParams.from_numpy_dict(p.to_numpy_dict())
    torch.testing.assert_close(q.pose, p.pose)
    bad = p.to_numpy_dict()
    bad["pose"] = np.zeros((1, 9), np.float32)
    with pytest.raises(NhaBenchError, match="pose"):
        HeadParams.from_numpy_dict(bad)
    with pytest.raises(NhaBenchError, match="missing|lack"):
        HeadParams.from_numpy_dict({"shape": bad["shape"]})
    with pytest.raises(NhaBenchError, match="shape"):
        model(HeadParams.zeros(load_head_model("ict", n_shape=10), 1))


def test_asset_errors_name_the_file(tmp_path):
    bad = tmp_path / "ict_light.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(UnavailableError, match="ict_light.npz"):
        IctHeadModel(path=bad)
    with pytest.raises(UnavailableError, match="n_shape"):
        IctHeadModel(n_shape=1000)


@pytest.mark.skipif(not UPSTREAM.exists(), reason="upstream ICT-FaceKit arrays not available")
def test_float16_deltas_within_0_02_mm_of_upstream():
    d = np.load(ASSET)
    up = np.load(UPSTREAM / "ict_facekit_light.npz")
    ids = d["upstream_vertex_ids"]
    names = list(up["expression_names"])
    idx = [names.index(str(n)) for n in d["expression_names"]]
    err_e = np.abs(d["expression_mm"].astype(np.float64) - up["expression_deltas_cm"][idx][:, ids] * 10).max()
    k = d["identity_mm"].shape[0]
    err_i = np.abs(d["identity_mm"].astype(np.float64) - up["identity_deltas_cm"][:k][:, ids] * 10).max()
    assert max(err_e, err_i) < 0.02
    assert "PupilDilate_L" not in set(map(str, d["expression_names"])) and len(idx) == 53


def test_eye_joints_follow_identity_to_the_sclera_sphere_centre(model):
    """Eye pivots = centre of the shaped sclera (independent nonlinear sphere fit), < 0.1 mm."""
    from scipy.optimize import least_squares

    ids = np.load(ASSET)["upstream_vertex_ids"]
    torch.manual_seed(0)
    p = _params(model, shape=1.5 * torch.randn(1, model.n_shape))
    v = model(p)[0].double().numpy()
    joints = model.rest_joints(p.shape)[0].double().numpy()
    for j, (lo, hi) in ((3, (21451, 22221)), (4, (23021, 23791))):
        pts = v[(ids >= lo) & (ids < hi)]
        fit = least_squares(lambda c: np.linalg.norm(pts - c[:3], axis=1) - c[3],
                            np.r_[pts.mean(0), 0.01]).x
        assert np.linalg.norm(fit[:3] - joints[j]) < 1e-4
