"""FLAME loader on a small FLAME-format file written here (chumpy-like pickles), LBS vs numpy."""

from __future__ import annotations

import importlib.util
import io
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse
import torch
import trimesh
from scipy.spatial.transform import Rotation

from nha_bench.errors import NhaBenchError, UnavailableError
from nha_bench.head import HeadParams, load_head_model
from nha_bench.head.flame import FlameHeadModel, _FlameUnpickler
from nha_bench.head.regions import geometric_regions, thin_part_mask

N_ID, N_EX = 300, 100  # FLAME's layout: shapedirs (V, 3, 300 shape + 100 expression)


class Ch:
    """Pickles like chumpy.ch.Ch (its __getstate__ is __dict__ minus _parents/_cache): the array
    sits under 'x' beside chumpy's bookkeeping attributes."""

    def __init__(self, x):
        self.x = x
        self._dirty_vars = set()
        self._itr = None
        self._depends_on_deps = {}
        self._make_dense = self._make_sparse = False


Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"


def _flame_like(rng) -> dict:
    """A tiny head: icosphere (162 verts), FLAME's 5-joint tree, random blend/pose shapes."""
    s = trimesh.creation.icosphere(subdivisions=2, radius=0.09)
    v = np.array(s.vertices, dtype=np.float64)
    nv = len(v)
    # joints: root low, neck, jaw, eyes at +-3 cm in front; regressor = means of vertex groups
    groups = [v[:, 1] < -0.08, v[:, 1] < -0.06, (v[:, 1] < -0.03) & (v[:, 2] > 0.05),
              (v[:, 0] > 0.02) & (v[:, 2] > 0.07) & (v[:, 1] > 0.0),
              (v[:, 0] < -0.02) & (v[:, 2] > 0.07) & (v[:, 1] > 0.0)]
    jr = np.stack([g / g.sum() for g in map(lambda g: g.astype(float), groups)])
    w = np.zeros((nv, 5))
    w[:, 1] = 1
    w[v[:, 1] < -0.06, :2] = 0.5
    w[groups[2], :] = [0, 0.3, 0.7, 0, 0]
    w[groups[3], :] = [0, 0, 0, 1, 0]
    w[groups[4], :] = [0, 0, 0, 0, 1]
    return dict(
        v_template=Ch(v), f=np.array(s.faces, dtype=np.uint32),
        shapedirs=Ch(rng.normal(scale=1e-3, size=(nv, 3, N_ID + N_EX))),
        posedirs=rng.normal(scale=1e-3, size=(nv, 3, 36)),
        J_regressor=scipy.sparse.csc_matrix(jr), weights=Ch(w),
        kintree_table=np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
        bs_style="lbs", bs_type="lrotmin",
    )


@pytest.fixture(scope="module")
def flame_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    d = _flame_like(rng)
    path = tmp_path_factory.mktemp("flame") / "generic_model.pkl"
    fake = types.ModuleType("chumpy.ch")
    fake.Ch = Ch
    saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch")}
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = types.ModuleType("chumpy"), fake
    try:
        path.write_bytes(pickle.dumps(d, protocol=2))
    finally:
        for k, m in saved.items():
            if m is None:
                sys.modules.pop(k)
            else:
                sys.modules[k] = m
    assert b"chumpy.ch" in path.read_bytes() and b"scipy.sparse" in path.read_bytes()
    lmk = path.parent / "landmark_embedding.npy"
    emb = dict(full_lmk_faces_idx=rng.integers(0, len(d["f"]), (1, 68)),
               full_lmk_bary_coords=rng.dirichlet(np.ones(3), (1, 68)))
    np.save(lmk, np.array(emb, dtype=object), allow_pickle=True)
    return path, lmk, d


def _ref_flame(d, shape, expr, pose, trans) -> np.ndarray:
    """Independent numpy FLAME: blendshapes, regressed joints, pose correctives, LBS per vertex."""
    v = d["v_template"].x + d["shapedirs"].x[:, :, : len(shape)] @ shape \
        + d["shapedirs"].x[:, :, N_ID:N_ID + len(expr)] @ expr
    joints = d["J_regressor"].toarray() @ v
    rots = Rotation.from_rotvec(pose.reshape(5, 3)).as_matrix()
    v = v + d["posedirs"] @ np.concatenate([(r - np.eye(3)).ravel() for r in rots[1:]])
    parents = [-1, 0, 1, 1, 1]
    g_r, g_t = [None] * 5, [None] * 5
    for j in range(5):  # world transform of joint j: x -> G_r x + G_t
        if parents[j] < 0:
            g_r[j], g_t[j] = rots[j], joints[j] - rots[j] @ joints[j]
        else:
            p = parents[j]
            g_r[j] = g_r[p] @ rots[j]
            g_t[j] = g_r[p] @ (joints[j] - rots[j] @ joints[j]) + g_t[p]
    out = np.zeros_like(v)
    for j in range(5):
        out += d["weights"].x[:, j:j + 1] * (v @ g_r[j].T + g_t[j])
    return out + trans


def test_loads_without_chumpy_and_matches_numpy_flame(flame_file):
    path, lmk, d = flame_file
    assert importlib.util.find_spec("chumpy") is None  # loader must not need it
    m = load_head_model("flame", path=path, landmark_embedding=lmk)
    assert (m.n_shape, m.n_expr, m.n_vertices) == (300, 100, 162)
    rng = np.random.default_rng(1)
    shape, expr = rng.normal(size=300), rng.normal(size=100)
    pose, trans = rng.normal(scale=0.3, size=15), rng.normal(size=3)
    p = HeadParams(*(torch.tensor(a[None], dtype=torch.float32) for a in (shape, expr, pose, trans)))
    v = m(p)[0].double().numpy()
    np.testing.assert_allclose(v, _ref_flame(d, shape, expr, pose, trans), atol=2e-6)
    lm = m.landmarks(m(p))
    assert lm.shape == (1, 68, 3)
    f = np.load(lmk, allow_pickle=True)[()]
    tri = v[d["f"][f["full_lmk_faces_idx"][0]].astype(int)]
    np.testing.assert_allclose(lm[0].double().numpy(), (tri * f["full_lmk_bary_coords"][0][..., None]).sum(1), atol=1e-6)


def test_python2_array_opcodes_load_with_latin1():
    """Real FLAME files are Python 2 pickles: array bytes are py2 str (SHORT_BINSTRING)."""
    raw = np.array([1.5, -2.0, 3.25]).astype("<f8").tobytes()
    py2 = (b"\x80\x02}q\x00U\nv_templateq\x01cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
           b"K\x00\x85U\x01b\x87R(K\x01K\x03\x85cnumpy\ndtype\nU\x02f8K\x00K\x01\x87R(K\x03U\x01<NNN"
           b"J\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89U" + bytes([len(raw)]) + raw + b"tbs.")
    d = _FlameUnpickler(io.BytesIO(py2), encoding="latin1").load()
    np.testing.assert_array_equal(d["v_template"], [1.5, -2.0, 3.25])


def test_zero_pose_is_template_plus_shape_and_global_rotation_is_rigid(flame_file):
    path, _, d = flame_file
    m = FlameHeadModel(path, n_shape=20, n_expr=10)
    p = HeadParams.zeros(m, 1)
    p.shape[0, :20] = torch.linspace(-2, 2, 20)
    v = m(p)[0].double().numpy()
    ref = d["v_template"].x + d["shapedirs"].x[:, :, :20] @ np.linspace(-2, 2, 20)
    np.testing.assert_allclose(v, ref, atol=1e-6)
    p.pose[0, :3] = torch.tensor([0.3, -0.5, 0.2])  # global only: no pose correctives (root)
    root = d["J_regressor"].toarray()[0] @ ref
    rot = Rotation.from_rotvec([0.3, -0.5, 0.2])
    np.testing.assert_allclose(m(p)[0].double().numpy(), rot.apply(ref - root) + root, atol=1e-6)


def test_gradients_flow(flame_file):
    m = FlameHeadModel(flame_file[0], n_shape=10, n_expr=10)
    p = HeadParams.zeros(m, 2)
    for t in (p.shape, p.expr, p.pose, p.translation):
        t.requires_grad_(True)
    m(p).square().sum().backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in (p.shape, p.expr, p.pose, p.translation))


def test_bad_files_raise_errors_naming_the_file(tmp_path, flame_file):
    missing = tmp_path / "nope" / "generic_model.pkl"
    with pytest.raises(UnavailableError, match="generic_model.pkl"):
        load_head_model("flame", path=missing)
    with pytest.raises(UnavailableError, match="FLAME file"):
        load_head_model("flame")
    corrupt = tmp_path / "corrupt.pkl"
    corrupt.write_bytes(b"\x80\x02}q\x00(X\x01\x00garbage")
    with pytest.raises(UnavailableError, match="corrupt.pkl"):
        FlameHeadModel(corrupt)
    partial = tmp_path / "partial.pkl"
    partial.write_bytes(pickle.dumps({"v_template": np.zeros((3, 3)), "f": np.zeros((1, 3))}))
    with pytest.raises(UnavailableError, match="lacks keys"):
        FlameHeadModel(partial)
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(b"cos\nsystem\n(S'echo hacked'\ntR.")
    with pytest.raises(UnavailableError, match="refusing to load global os.system"):
        FlameHeadModel(evil)
    with pytest.raises(UnavailableError, match="n_shape"):
        FlameHeadModel(flame_file[0], n_shape=301)
    m = FlameHeadModel(flame_file[0], n_shape=10, n_expr=10)
    with pytest.raises(UnavailableError, match="landmark"):
        m.landmarks(m(HeadParams.zeros(m, 1)))
    bad_lmk = tmp_path / "lmk51.npy"
    np.save(bad_lmk, np.array(dict(lmk_face_idx=np.zeros(51, int), lmk_b_coords=np.ones((51, 3)) / 3)), allow_pickle=True)
    with pytest.raises(UnavailableError, match="lmk51.npy"):
        FlameHeadModel(flame_file[0], landmark_embedding=bad_lmk)
    assert issubclass(UnavailableError, NhaBenchError)


def test_geometric_regions_agree_with_curated_ict_regions():
    """The fallback rules used for FLAME without masks, checked on ICT's hand-made regions."""
    m = load_head_model("ict")
    v = m.canonical_vertices.numpy()
    g = geometric_regions(v, m.lbs_weights.numpy(), m.rest_joints(torch.zeros(1, m.n_shape))[0].numpy())
    skin = ~m.regions["mouth"].numpy()
    for k, iou_min in (("face", 0.85), ("neck", 0.85), ("eyes", 0.99), ("head", 0.95), ("ears", 0.5)):
        a, b = g[k] & skin, m.regions[k].numpy() & skin
        assert (a & b).sum() / (a | b).sum() > iou_min, k


def test_thin_part_mask_finds_a_flap_beside_a_ball():
    """A flat disc (4 mm thick) beside a ball (100 mm across): the disc's flat faces are thinner than
    20 mm along their normals, the ball nowhere."""
    ball = trimesh.creation.icosphere(subdivisions=3, radius=0.05)
    disc = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    disc.apply_scale([0.02, 0.02, 0.002])
    disc.apply_translation([0.1, 0.0, 0.0])
    both = trimesh.util.concatenate([ball, disc])
    on_disc = np.arange(len(both.vertices)) >= len(ball.vertices)
    thin = thin_part_mask(both.vertices, both.faces, np.ones(len(both.vertices), bool), 0.02)
    assert not thin[~on_disc].any()
    assert thin[on_disc].mean() > 0.5
    flat = on_disc & (np.abs(both.vertex_normals[:, 2]) > 0.9)
    assert thin[flat].all()
    only_ball = thin_part_mask(both.vertices, both.faces, ~on_disc, 0.02)
    assert not only_ball.any()
