"""NHA building blocks: networks, energy terms, perceptual loss, config (hand-made inputs)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage
import torch

from nha_bench.errors import NhaBenchError, UnavailableError
from nha_bench.head import HeadParams, load_head_model
from nha_bench.methods.nha import losses
from nha_bench.methods.nha.avatar import N_SEMANTIC_XOR, PARSING_OF_SEMANTIC, SEMANTIC, NhaAvatar, option_regions, parsing_map
from nha_bench.methods.nha.config import INERT_WHEN, get_config
from nha_bench.methods.nha.networks import NormalPatchEncoder, OffsetMLP, TextureMLP
from nha_bench.methods.nha.perceptual import SUBSTITUTE, PerceptualLoss
from nha_bench.render import rasterize


def test_landmark_and_eyelid_terms_match_hand_values():
    target = torch.zeros(1, 68, 2)
    pred = target.clone()
    pred[0, 0] = torch.tensor([3.0, 1.0])  # |3| + |1| over 68 points x 2 coords
    w = torch.ones(1, 68)
    assert losses.landmark_l1(pred, target, w).item() == pytest.approx(4.0 / 136)
    w[0, 0] = 0.0  # invisible landmark is ignored
    assert losses.landmark_l1(pred, target, w).item() == 0.0
    # closing the left eye's upper lid point 37 onto its lower partner 41 (detected 4 px apart)
    target[0, 41] = torch.tensor([0.0, 4.0])
    pred = target.clone()
    pred[0, 37] = pred[0, 41]
    assert losses.eyelid_l1(pred, target, torch.ones(1, 68)).item() == pytest.approx(4.0 / 8)


def test_image_laplacian_matches_scipy():
    img = torch.rand(2, 3, 9, 7, generator=torch.Generator().manual_seed(0))
    ours = losses.image_laplacian(img).numpy()
    ref = np.stack([[scipy.ndimage.laplace(c, mode="nearest") for c in b] for b in img.numpy()])
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    # the normal term ignores constant differences (only high frequencies matter)
    mask = torch.ones(2, 1, 9, 7)
    assert losses.normal_laplacian_l1(img + 0.3, img, mask).item() < 1e-5


def test_soft_xor_is_the_mismatch_fraction_on_binary_maps():
    rng = np.random.default_rng(1)
    a, b = rng.random((2, 1, 1, 8, 8)) > 0.5
    got = losses.soft_xor(torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32))
    assert got.item() == pytest.approx(np.logical_xor(a, b).mean())


def test_mesh_laplacian_matches_dense_reference():
    faces = torch.tensor([[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2], [1, 2, 4]])
    edges = losses.unique_edges(faces)
    assert len(edges) == 8  # tetrahedron (6) + vertex 4 joined to 1 and 2
    x = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(2))
    adj = np.zeros((5, 5))
    for i, j in edges.numpy():
        adj[i, j] = adj[j, i] = 1
    ref = x.numpy() - np.einsum("ij,bjc->bic", adj / adj.sum(1, keepdims=True), x.numpy())
    np.testing.assert_allclose(losses.mesh_laplacian(x, edges, 5).numpy(), ref, atol=1e-6)
    const = torch.ones(1, 5, 3) * 0.01
    reg = losses.offset_regulariser(const, const, edges, torch.ones(5), torch.ones(5), 1.0, 1.0, 1.0)
    assert reg["offset_lap"].item() < 1e-12 and reg["offset_pose"].item() == 0.0
    assert reg["offset_norm"].item() == pytest.approx(3e-4)


def test_networks_shapes_and_initial_offsets_are_small():
    torch.manual_seed(0)
    g = OffsetMLP(n_pose=12, width=16, layers=2)
    off = g(torch.rand(100, 3) * 2 - 1, torch.zeros(3, 12))
    assert off.shape == (3, 100, 3) and off.abs().max().item() < 2e-3  # below 2 mm at init
    t = TextureMLP(n_features=4, n_cond=5, width=16, layers=2)
    pts, feats, cond = torch.rand(10, 3), torch.rand(10, 4), torch.rand(2, 5)
    rgb = t(pts, feats, cond, [6, 4])
    assert rgb.shape == (10, 3) and (rgb > 0).all() and (rgb < 1).all()
    assert not torch.allclose(t(pts, feats, torch.zeros(2, 5), [6, 4]), t(pts, feats, torch.ones(2, 5), [6, 4]))  # FiLM acts
    assert not torch.allclose(t(pts, torch.zeros(10, 4), cond, [6, 4]), rgb)  # the normal features act
    # each frame's pixels get that frame's code: frame by frame equals the batch
    np.testing.assert_allclose(t(pts[6:], feats[6:], cond[1:], [4]).detach().numpy(), rgb[6:].detach().numpy(), atol=1e-6)
    # offsets of one vertex depend on the pose only through its own row (batch broadcast is correct)
    pose = torch.randn(2, 12)
    both = g(torch.rand(4, 3), pose)
    torch.manual_seed(1)
    canon = torch.rand(4, 3)
    np.testing.assert_allclose(g(canon, pose)[1].detach().numpy(), g(canon, pose[1:])[0].detach().numpy(), atol=1e-7)
    assert both.shape == (2, 4, 3)


def test_normal_encoder_sees_exactly_its_patch():
    enc = NormalPatchEncoder(patch=5, features=4)
    assert enc.patch == 5
    base = torch.zeros(1, 3, 15, 15)
    bumped = base.clone()
    bumped[0, :, 7, 7] = 1.0
    changed = (enc(bumped) - enc(base)).abs().sum(1)[0] > 0
    ys, xs = torch.nonzero(changed, as_tuple=True)
    assert ys.min() == 5 and ys.max() == 9 and xs.min() == 5 and xs.max() == 9


def test_perceptual_substitute_and_user_file(tmp_path, monkeypatch):
    monkeypatch.delenv("NHA_ARCFACE", raising=False)
    g = torch.Generator().manual_seed(3)
    a, b = torch.rand(2, 3, 64, 64, generator=g), torch.rand(2, 3, 64, 64, generator=g)
    sub = PerceptualLoss()
    assert sub.name == SUBSTITUTE
    assert sub(a, a).item() == pytest.approx(0.0, abs=1e-5) and sub(a, b).item() > 0.5
    with pytest.raises(UnavailableError, match="missing"):
        PerceptualLoss(str(tmp_path / "nope.pt"))
    # a user "ArcFace": a fixed linear embedding of the 112x112 image
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(48, 8))
    path = tmp_path / "face.pt"
    torch.jit.save(torch.jit.script(net), str(path))
    monkeypatch.setenv("NHA_ARCFACE", str(path))
    arc = PerceptualLoss()
    assert arc.name == "arcface:face.pt"
    up = lambda x: torch.nn.functional.interpolate(x, (112, 112), mode="bilinear") * 2 - 1  # noqa: E731
    ref = 1 - torch.nn.functional.cosine_similarity(net(up(a)), net(up(b)), dim=-1).mean()
    assert arc(a, b).item() == pytest.approx(ref.item(), rel=1e-5)


def test_config_stages_and_errors():
    cfg = get_config("tiny", iterations=10)
    assert [cfg.stage(s) for s in range(10)] == [1] * 6 + [2] * 2 + [3] * 2
    assert get_config("paper").offset_layers == 6 and get_config("paper").texture_width == 256
    assert cfg.hash() != get_config("tiny").hash()
    with pytest.raises(NhaBenchError, match="unknown nha preset"):
        get_config("huge")
    with pytest.raises(NhaBenchError, match="override"):
        get_config("tiny", no_such_key=1)
    # the same setting spelled as an int / JSON list (command line) hashes like the float / tuple
    spelled = get_config("paper", w_offset_lap=10, w_rgb=[0, 1, 0.05])
    assert spelled.hash() == get_config("paper", w_offset_lap=10.0, w_rgb=(0.0, 1.0, 0.05)).hash()
    assert spelled.w_rgb == (0.0, 1.0, 0.05) and isinstance(spelled.w_offset_lap, float)


def test_matmul_precision_is_scoped():
    from nha_bench.methods.nha.method import matmul_precision

    before = torch.backends.cuda.matmul.allow_tf32
    with matmul_precision(not before):
        assert torch.backends.cuda.matmul.allow_tf32 is (not before)
    assert torch.backends.cuda.matmul.allow_tf32 is before


def test_offsets_are_zero_on_fixed_regions_only():
    head = load_head_model("ict", n_shape=10)
    fixed = NhaAvatar(head, get_config("tiny", offset_fixed_regions=["face", "eyes"]))
    free = NhaAvatar(head, get_config("tiny", offset_fixed_regions=[]))
    fixed.offset_mlp.load_state_dict(free.offset_mlp.state_dict())
    params = HeadParams.zeros(head, 2)
    params.pose[:, 3:6] = torch.tensor([0.1, 0.2, 0.0])  # a neck rotation conditions G
    with torch.no_grad():
        geo_fixed, geo_free = fixed.geometry(params), free.geometry(params)
    off = head.regions["face"] | head.regions["eyes"]
    assert geo_fixed.offsets[:, off].abs().max() == 0 and fixed.neutral_offsets()[:, off].abs().max() == 0
    assert torch.equal(geo_fixed.offsets[:, ~off], geo_free.offsets[:, ~off])
    assert geo_free.offsets[:, off].abs().max() > 0
    with pytest.raises(NhaBenchError, match="offset_fixed_regions.*'nose'"):
        NhaAvatar(head, get_config("tiny", offset_fixed_regions=["nose"]))


def test_laplacian_region_factors_weight_their_vertices():
    head = load_head_model("ict", n_shape=10)
    cfg = get_config("tiny", offset_lap_region_factors=[["ears", 500], ["neck", 2]])
    assert cfg.offset_lap_region_factors == (("ears", 500.0), ("neck", 2.0))
    assert cfg.hash() == get_config("tiny", offset_lap_region_factors=[["ears", 500.0], ["neck", 2.0]]).hash()
    weight = NhaAvatar(head, cfg).lap_weight
    ears, neck = head.regions["ears"], head.regions["neck"]
    assert (weight[ears] == 500).all() and (weight[neck & ~ears] == 2).all() and (weight[~ears & ~neck] == 1).all()
    assert torch.equal(NhaAvatar(head, get_config("tiny")).lap_weight, torch.ones(head.n_vertices))
    # the Laplacian term is the per-vertex weighted mean: a bump on one vertex costs its weight
    faces = torch.tensor([[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2]])
    bump = torch.zeros(1, 4, 3)
    bump[0, 0, 0] = 1.0
    ones, heavy = torch.ones(4), torch.tensor([1.0, 10.0, 10.0, 10.0])
    plain = losses.offset_regulariser(bump, bump, losses.unique_edges(faces), ones, ones, 1.0, 0.0, 0.0)["offset_lap"]
    weighted = losses.offset_regulariser(bump, bump, losses.unique_edges(faces), heavy, ones, 1.0, 0.0, 0.0)["offset_lap"]
    # vertex 0: Laplacian 1; vertices 1-3: -1/3 each -> plain (1 + 3/9) / 4, weighted (1 + 30/9) / 4
    assert plain.item() == pytest.approx((1 + 3 / 9) / 4) and weighted.item() == pytest.approx((1 + 30 / 9) / 4)
    with pytest.raises(NhaBenchError, match="offset_lap_region_factors.*'nose'"):
        NhaAvatar(head, get_config("tiny", offset_lap_region_factors=[["nose", 2]]))


def test_pinna_is_the_thin_part_of_the_ears_region():
    """``pinna`` (derived when an option names it) keeps the ear's flap and leaves out the band of
    scalp that ICT's ``ears`` region takes in; only the pinna gets the Laplacian factor."""
    head = load_head_model("ict", n_shape=10)
    weight = NhaAvatar(head, get_config("tiny", offset_lap_region_factors=[["pinna", 500]])).lap_weight
    ears = head.regions["ears"]
    pinna = weight == 500
    assert not (pinna & ~ears).any() and 0.2 < pinna.sum() / ears.sum() < 0.5
    assert (weight[~pinna] == 1).all()
    # the flap stands out from the skull: its vertices lie further out sideways than the rest of ears
    x = head.canonical_vertices[:, 0].abs()
    assert x[pinna].median() > x[ears & ~pinna].median() + 0.005


def test_normal_frame_laplacian_lets_the_surface_grow_outward_uniformly():
    head = load_head_model("ict", n_shape=10)
    avatar = NhaAvatar(head, get_config("tiny", offset_lap_frame="normal"))
    normals = avatar.template_normals
    scalp = head.regions["scalp"]
    centred = head.canonical_vertices[scalp] - head.canonical_vertices.mean(0)
    assert ((normals[scalp] * centred).sum(-1) > 0).all()  # the template's normals point out
    assert "template_normals" not in avatar.state_dict()  # checkpoints of either frame load in the other
    ones = torch.ones(head.n_vertices)
    grow = 2.0 * normals[None]  # 2 mm outward everywhere
    def lap(frame_normals: torch.Tensor | None) -> float:
        return losses.offset_regulariser(grow, grow, avatar.edges, ones, ones, 1.0, 0.0, 0.0, frame_normals)["offset_lap"].item()
    assert lap(normals) == pytest.approx(0.0, abs=1e-10) and lap(None) > 1e-3
    bump = torch.zeros_like(grow)
    bump[0, 0] = normals[0]
    assert lap(None) > 0 and losses.offset_regulariser(bump, bump, avatar.edges, ones, ones, 1.0, 0.0, 0.0, normals)["offset_lap"] > 0
    # a rigid shift is tangential almost everywhere: the tangent factor scales its cost
    shift = torch.zeros_like(grow)
    shift[..., 2] = 1.0
    def shift_cost(factor: float) -> float:
        return losses.offset_regulariser(shift, shift, avatar.edges, ones, ones, 1.0, 0.0, 0.0, normals, factor)["offset_lap"].item()
    assert shift_cost(0.1) < shift_cost(1.0) and shift_cost(0.0) < shift_cost(0.1)
    # the tangential magnitude term: free for outward growth, the squared slide for a tangential shift
    assert losses.tangential_magnitude(grow, normals).item() == pytest.approx(0.0, abs=1e-10)
    tangent = torch.linalg.cross(normals, torch.tensor([0.0, 1.0, 0.0]).expand_as(normals))
    tangent = 3.0 * tangent / tangent.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    moving = tangent.norm(dim=-1) > 1.0  # vertices whose normal is not vertical
    assert losses.tangential_magnitude(tangent[None], normals).item() == pytest.approx(9.0 * moving.float().mean().item(), rel=1e-4)
    with pytest.raises(NhaBenchError, match="offset_lap_frame"):
        NhaAvatar(head, get_config("tiny", offset_lap_frame="tangent"))


def test_yaw_balanced_weights_give_every_yaw_bin_the_same_share():
    from nha_bench.head.lbs import axis_angle_to_matrix
    from nha_bench.methods.nha.data import yaw_balanced_weights

    yaw_deg = torch.tensor([0.0, 2.0, 4.0, 6.0, 8.0, 3.0, 35.0, -62.0])  # six frames in [0, 10), two alone
    pose = torch.zeros(len(yaw_deg), 3)
    pose[:, 1] = torch.deg2rad(yaw_deg)  # a turn about the model's y axis (up)
    forward = axis_angle_to_matrix(pose)[:, :, 2]
    assert forward[6, 0] > 0  # positive yaw turns the face towards +x
    weights = yaw_balanced_weights(pose, 10.0)
    assert torch.allclose(weights, torch.tensor([1 / 6] * 6 + [1.0, 1.0]))
    draws = torch.multinomial(weights.expand(20000, -1), 1, generator=torch.Generator().manual_seed(0)).flatten()
    share = torch.bincount(draws, minlength=8).float() / len(draws)
    assert share[:6].sum() == pytest.approx(1 / 3, abs=0.02) and share[6] == pytest.approx(1 / 3, abs=0.02)


def test_options_added_later_leave_the_hash_alone_while_off():
    paper, before = get_config("paper"), get_config("paper", **INERT_WHEN)
    for name, off in INERT_WHEN.items():
        assert name not in before.hashed_fields()
        assert (name in paper.hashed_fields()) == (getattr(paper, name) != off)
    assert get_config("paper", **{**INERT_WHEN, "stage1_yaw_bin_deg": 10.0}).hash() != before.hash()
    # the hashes of the tables' checkpoints (sessions 10-11) and of the defaults since session 23:
    # change them only with a default on purpose
    assert before.hash() == "ac9444d6c9"
    assert paper.hash() == "ecaffb12cf"


NO_DEPTH_TEST = {k: INERT_WHEN[k] for k in ("semantic_depth_tolerance_mm", "semantic_depth_exempt_classes")}
"""Semantics without the depth test (the defaults until session 23): every front-facing face counts."""


def _frontal_semantics(avatar: NhaAvatar, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """``avatar``'s soft classes (1, C, H, W) of the neutral head seen from the front and the hard
    rasterizer's visible face labels (1, H, W; -1 off the head)."""
    params = HeadParams.zeros(avatar.head, 1)
    params.translation[:] = torch.tensor([0.0, 0.03, 0.8])
    K = torch.tensor([[110.0 * size / 64, 0, size / 2], [0, 110.0 * size / 64, size / 2], [0, 0, 1]])
    with torch.no_grad():
        verts = avatar.geometry(params).verts_cam
        frags = rasterize(verts, avatar.faces, K, size, size)
        soft = avatar.semantics(verts, K, size, size, 1.0)
    visible = torch.where(frags.face_idx >= 0, avatar.face_labels[frags.face_idx.clamp_min(0)], -1)
    return soft, visible


def test_depth_tested_semantics_count_a_class_where_its_surface_is_seen():
    """Without a depth test the eyeballs behind the lids label several times the eye pixels that the
    z-buffer shows, and the closed mouth's socket labels mouth; with ``semantic_depth_tolerance_mm``
    those surfaces count as ``hidden``, and the head's silhouette (the union of all classes) stays."""
    head = load_head_model("ict", n_shape=10)
    seen = NhaAvatar(head, get_config("tiny", semantic_depth_exempt_classes=[]))
    every = NhaAvatar(head, get_config("tiny", **NO_DEPTH_TEST))
    every.offset_mlp.load_state_dict(seen.offset_mlp.state_dict())
    soft_seen, visible = _frontal_semantics(seen, 128)
    soft_every, _ = _frontal_semantics(every, 128)
    eyes, mouth, hidden = SEMANTIC.index("eyes"), SEMANTIC.index("mouth"), SEMANTIC.index("hidden")
    assert (visible == mouth).sum() == 0 and soft_every[0, mouth].sum() > 100
    assert soft_seen[0, mouth].max() < 1e-3
    assert soft_every[0, eyes].sum() > 1.8 * soft_seen[0, eyes].sum()
    assert soft_seen[0, eyes].sum() > (visible == eyes).sum()  # the visible eyes, with their soft edge
    assert soft_every[0, hidden].max() == 0 and soft_seen[0, hidden].sum() > 500  # eyeballs, mouth socket
    union = lambda soft: 1 - torch.prod(1 - soft, dim=1)  # noqa: E731
    change = (union(soft_seen) - union(soft_every)).abs()  # soft / hard swaps at a few class edges
    assert (change > 0.01).sum() < 0.005 * (union(soft_every) > 0.01).sum()
    assert abs(union(soft_seen).sum() - union(soft_every).sum()) < 1e-3 * union(soft_every).sum()


def test_depth_exempt_classes_count_wherever_they_face_the_camera():
    """``semantic_depth_exempt_classes``: the eyes exempt from the depth test label the eyeballs behind
    the lids again, as without the test, while the mouth socket stays hidden; an unknown class, or
    classes without a depth test, are refused."""
    head = load_head_model("ict", n_shape=10)
    exempt = NhaAvatar(head, get_config("tiny", semantic_depth_exempt_classes=["eyes"]))
    every = NhaAvatar(head, get_config("tiny", **NO_DEPTH_TEST))
    every.offset_mlp.load_state_dict(exempt.offset_mlp.state_dict())
    soft_exempt, _ = _frontal_semantics(exempt, 128)
    soft_every, _ = _frontal_semantics(every, 128)
    eyes, mouth = SEMANTIC.index("eyes"), SEMANTIC.index("mouth")
    assert (soft_exempt[0, eyes] - soft_every[0, eyes]).abs().max() < 1e-5
    assert soft_every[0, mouth].sum() > 100 and soft_exempt[0, mouth].max() < 1e-3
    with pytest.raises(NhaBenchError, match="semantic_depth_exempt_classes"):
        NhaAvatar(head, get_config("tiny", semantic_depth_exempt_classes=["scalp"]))
    with pytest.raises(NhaBenchError, match="no depth test"):
        NhaAvatar(head, get_config("tiny", semantic_depth_tolerance_mm=math.inf, semantic_depth_exempt_classes=["eyes"]))


def test_pinna_ear_class_leaves_the_band_round_the_ear_to_the_silhouette():
    """``semantic_ear_region="pinna"``: only the ear's flap is drawn as ear; the rest of ICT's ``ears``
    region is ``ear_band``, which no class term compares with the parsing."""
    head = load_head_model("ict", n_shape=10)
    ears_labels = NhaAvatar(head, get_config("tiny", semantic_ear_region="ears")).face_labels
    pinna_avatar = NhaAvatar(head, get_config("tiny"))
    labels = pinna_avatar.face_labels
    pinna = option_regions(head, pinna_avatar.cfg)["pinna"]
    ear, band = SEMANTIC.index("ears"), SEMANTIC.index("ear_band")
    assert band >= N_SEMANTIC_XOR
    assert torch.equal(labels == ear, pinna[head.faces].all(1))
    band_faces = head.regions["ears"][head.faces].all(1) & ~pinna[head.faces].all(1)
    assert (ears_labels[band_faces] == ear).all() and (labels[band_faces] == band).all()
    assert torch.equal(labels[labels != band], ears_labels[labels != band])
    with pytest.raises(NhaBenchError, match="semantic_ear_region"):
        NhaAvatar(head, get_config("tiny", semantic_ear_region="lobe"))


def test_parsing_map_draws_eyes_and_ears_over_the_skin():
    """Where the skin and the eyes both pass 0.5 the eyes show; below 0.5 nothing does; the ear band
    (no parsing label) never does."""
    soft = torch.zeros(len(SEMANTIC), 2, 3)
    soft[SEMANTIC.index("skin_neck")] = 0.9
    soft[SEMANTIC.index("eyes"), 0, 0] = 0.8
    soft[SEMANTIC.index("ears"), 0, 1] = 0.4
    soft[SEMANTIC.index("ear_band"), 1, 2] = 1.0
    soft[SEMANTIC.index("skin_neck"), 1, 2] = 0.0
    skin, eyes = (PARSING_OF_SEMANTIC[SEMANTIC.index(n)] for n in ("skin_neck", "eyes"))
    assert parsing_map(soft).tolist() == [[eyes, skin, skin], [skin, skin, 0]]
    assert parsing_map(soft[None].expand(4, -1, -1, -1)).shape == (4, 2, 3)
