"""NHA method on a small rendered subject (CPU, tiny preset): fit, stages, test-time fit, render,
checkpoints and bad input. One fit is shared by the tests of this module."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import torch

from nha_bench.datasets.format import Subject
from nha_bench.errors import DatasetError, NhaBenchError
from nha_bench.method import Sequence
from nha_bench.methods.nha import Nha
from nha_bench.methods.nha.config import INERT_WHEN
from nha_bench.methods.nha.method import MAX_NONFINITE_STEPS
from nha_bench.registry import METHODS
from nha_bench.render import rasterize

from test_method_nha_fixture import SIZE, make_subject

SEED = 0


def _snapshot(method: Nha) -> dict[str, list[torch.Tensor]]:
    av = method.avatar
    return {
        "geometry": [p.detach().clone() for p in av.geometry_parameters() + [method.shape]],
        "texture": [p.detach().clone() for p in av.texture_parameters()],
    }


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A tiny-preset fit of the test subject with snapshots at the stage boundaries."""
    root = make_subject(tmp_path_factory.mktemp("nha") / "subject")
    subject = Subject(root)
    torch.manual_seed(SEED)
    method = Nha()
    method.setup(Sequence(subject, "train"), "tiny", "cpu", SEED)
    cfg = method.cfg
    snaps, history = {0: _snapshot(method)}, []
    for step in range(method.num_iterations()):
        history.append(method.train_iteration(step))
        if cfg.stage(step + 1) != cfg.stage(step) or step + 1 == method.num_iterations():
            snaps[step + 1] = _snapshot(method)
    return {"method": method, "subject": subject, "history": history, "snaps": snaps, "root": root}


def test_registered_and_declares_outputs():
    assert METHODS.get("nha") is Nha
    assert Nha.provides == {"rgb", "normal", "mesh"} and Nha().needs_gpu("paper") and not Nha().needs_gpu("tiny")
    assert Nha.paper_scores["l1"] == 0.033 and Nha.paper_scores["cpbd"] == 0.674
    per = Nha.paper_scores_per_subject
    assert np.mean([s["hausdorff_full"] for s in per.values()]) == pytest.approx(Nha.paper_scores["hausdorff_full"])


def test_losses_go_down(fitted):
    cfg, hist = fitted["method"].cfg, fitted["history"]
    geom = [h for h in hist if h["stage"] == 1]
    tex = [h for h in hist if h["stage"] == 2]
    geom_data = lambda h: h["lmk"] + h["eyelid"] + h["semantic"] + h["silhouette"] + h["normal"]  # noqa: E731
    assert np.mean([geom_data(h) for h in geom[-3:]]) < np.mean([geom_data(h) for h in geom[:3]])
    assert tex[-1]["rgb"] < tex[0]["rgb"] and tex[-1]["perc"] < tex[0]["perc"]
    assert {h["stage"] for h in hist} == {1, 2, 3} and len(hist) == cfg.iterations
    assert all(np.isfinite(v) for h in hist for v in h.values())


def test_stages_freeze_the_right_networks(fitted):
    cfg, snaps = fitted["method"].cfg, fitted["snaps"]
    s1 = round(cfg.iterations * cfg.stage_fractions[0])
    s2 = s1 + round(cfg.iterations * cfg.stage_fractions[1])
    init, end1, end2, end3 = snaps[0], snaps[s1], snaps[s2], snaps[cfg.iterations]
    assert _same(init["texture"], end1["texture"]) and not _same(init["geometry"], end1["geometry"])
    assert _same(end1["geometry"], end2["geometry"]) and not _same(end1["texture"], end2["texture"])
    assert not _same(end2["geometry"], end3["geometry"]) and not _same(end2["texture"], end3["texture"])
    first_tex = next(h for h in fitted["history"] if h["stage"] == 2)
    assert "rgb" in first_tex and "offset_lap" not in first_tex  # no geometry regularisers in stage 2


def test_translation_has_its_own_learning_rate(fitted):
    """Per-frame translations move at lr_translation (Adam: at most ~3 lr per step), expression and
    pose at lr_frame."""
    subject = fitted["subject"]
    method = Nha(lr_translation=1e-6, iterations=4)
    method.setup(Sequence(subject, "train"), "tiny", "cpu", SEED)
    for step in range(4):
        method.train_iteration(step)
    tracked = Sequence(subject, "train").tracking()
    moved = np.abs(method.translation.detach().numpy() - tracked["translation"]).max()
    assert 0 < moved <= 3.2 * 1e-6 * 4
    assert np.abs(method.pose.detach().numpy() - tracked["pose"]).max() > 10 * moved


def test_offset_network_rates_per_part_and_stage(fitted):
    """G's sine layers move at lr_offset x lr_offset_sine_factor, its FiLM mapping and output layer
    at lr_offset (Adam's first step moves each weight by about its rate); stage 3 scales both by
    lr_offset_stage3_factor."""
    method = Nha(lr_offset=1e-3, lr_offset_sine_factor=0.25, lr_offset_stage3_factor=0.1)
    method.setup(Sequence(fitted["subject"], "train"), "tiny", "cpu", SEED)
    sine, film_and_head = method.avatar.geometry_parameter_groups()
    assert len(sine) + len(film_and_head) == len(method.avatar.geometry_parameters())
    before = [p.detach().clone() for p in sine + film_and_head]
    method.train_iteration(0)
    moved = [(p.detach() - b).abs().max().item() for p, b in zip(sine + film_and_head, before)]
    assert max(moved[: len(sine)]) == pytest.approx(0.25e-3, rel=0.01)
    assert max(moved[len(sine) :]) == pytest.approx(1e-3, rel=0.01)
    method.train_iteration(method.cfg.iterations - 1)  # a stage-3 step
    assert [g["lr"] for g in method.opt_geometry.param_groups[:2]] == pytest.approx([0.25e-4, 1e-4])


def test_fit_frame_params_changes_only_expression_and_pose(fitted):
    method, subject = fitted["method"], fitted["subject"]
    test = Sequence(subject, "val")
    before = {k: v.detach().clone() for k, v in method.avatar.state_dict().items()}
    frames_before = {k: getattr(method, k).detach().clone() for k in ("shape", "expr", "pose", "translation")}
    method.fit_frame_params(test)
    for k, v in method.avatar.state_dict().items():
        assert torch.equal(v, before[k]), k
    for k, v in frames_before.items():
        assert torch.equal(getattr(method, k).detach(), v), k
    tracked = test.tracking()
    params = method._render_params(test)
    assert not np.allclose(params.expr.numpy(), tracked["expr"]) and not np.allclose(params.pose.numpy(), tracked["pose"])
    np.testing.assert_array_equal(params.translation.numpy(), tracked["translation"].astype(np.float32))


def test_render_shapes_units_and_consistency(fitted):
    method, subject = fitted["method"], fitted["subject"]
    test = Sequence(subject, "val")
    out = method.render(test)
    n = len(test)
    assert out.indices == test.indices
    assert out.rgb.shape == (n, SIZE, SIZE, 3) and out.rgb.dtype == np.float32
    assert out.rgb.min() >= 0 and out.rgb.max() <= 1
    norm = np.linalg.norm(out.normal, axis=-1)
    covered = norm > 0
    np.testing.assert_allclose(norm[covered], 1.0, atol=1e-4)
    parsing = test.load("parsing")
    head = (parsing >= 1) & (parsing <= 5)
    assert (covered & head).sum() / (covered | head).sum() > 0.85  # the fitted head covers the subject's
    assert (out.normal[..., 2][covered] < 0.3).mean() > 0.95  # outward normals face the camera (-z)
    for mesh, gt_index, cov in zip(out.meshes, test.indices, covered):
        mesh.check()
        assert set(mesh.vertex_masks) == {"face", "head"} and mesh.vertex_masks["face"].any()
        gt = subject.mesh(gt_index).vertices  # millimetres, camera frame
        assert abs(np.median(mesh.vertices[:, 2]) - np.median(gt[:, 2])) < 20.0  # same units and frame
        # the returned mesh, rasterized independently, covers exactly the rendered normal map
        frags = rasterize(torch.tensor(mesh.vertices / 1000.0, dtype=torch.float32)[None],
                          torch.tensor(mesh.faces), torch.tensor(test.K), SIZE, SIZE)
        assert (frags.mask[0].numpy() != cov).mean() < 0.002


def test_save_load_round_trip_renders_identically_and_continues(fitted, tmp_path):
    method, subject = fitted["method"], fitted["subject"]
    test = Sequence(subject, "val")
    method.save(tmp_path / "ckpt")
    ref = method.render(test)
    other = Nha.fitted(subject, tmp_path / "ckpt", preset="tiny")
    again = other.render(test)
    for k, v in method.avatar.state_dict().items():
        assert torch.equal(v, other.avatar.state_dict()[k]), k
    # identical parameters; CPU kernels may differ in the last bit between runs
    np.testing.assert_allclose(ref.rgb, again.rgb, atol=1e-4)
    np.testing.assert_allclose(ref.normal, again.normal, atol=1e-4)
    np.testing.assert_allclose(ref.meshes[0].vertices, again.meshes[0].vertices, atol=1e-4)
    # both continue with the same next step (optimiser states restored)
    step = method.num_iterations() - 1
    a, b = method.train_iteration(step), other.train_iteration(step)
    assert a == pytest.approx(b, rel=1e-5)


def test_checkpoint_errors(fitted, tmp_path):
    method, subject = fitted["method"], fitted["subject"]
    with pytest.raises(NhaBenchError, match="checkpoint is missing"):
        method.load(tmp_path / "nowhere")
    method.save(tmp_path / "ckpt")
    other = Nha(iterations=7)
    other.setup(Sequence(subject, "train"), "tiny", "cpu", SEED)
    with pytest.raises(NhaBenchError, match="another configuration.*fitted with, --option iterations=16, or"):
        other.load(tmp_path / "ckpt")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "nha.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(NhaBenchError, match="cannot read"):
        method.load(tmp_path / "bad")


def test_checkpoint_from_before_stored_configurations_names_its_options(fitted, tmp_path):
    """A checkpoint that keeps only its hash (before session 23) of the configuration with every later
    option off: loading it under the current defaults names the options it was fitted with."""
    subject = fitted["subject"]
    before = Nha(**INERT_WHEN)
    before.setup(Sequence(subject, "train"), "tiny", "cpu", SEED)
    before.save(tmp_path / "old")
    state = torch.load(tmp_path / "old" / "nha.pt", weights_only=True)
    del state["config"]
    torch.save(state, tmp_path / "old" / "nha.pt")
    changed = [k for k, v in INERT_WHEN.items() if getattr(fitted["method"].cfg, k) != v]
    with pytest.raises(NhaBenchError) as error:
        Nha.fitted(subject, tmp_path / "old", preset="tiny")
    assert changed and set(re.findall(r"--option '?(\w+)=", str(error.value))) == set(changed)
    assert Nha.fitted(subject, tmp_path / "old", json.loads(json.dumps(INERT_WHEN)), preset="tiny").cfg.hash() == before.cfg.hash()


def test_bad_tracking_and_missing_normals(fitted, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(fitted["root"], root)
    meta = json.loads((root / "meta.json").read_text())
    meta["fields"] = [f for f in meta["fields"] if f != "normal"]
    (root / "meta.json").write_text(json.dumps(meta))
    method = Nha()
    method.setup(Sequence(Subject(root), "train"), "tiny", "cpu", SEED)
    assert any("normal term skipped" in n for n in method.config()["notes"])
    assert "normal" not in method.train_iteration(0)

    tracking = dict(np.load(root / "tracking.npz"))
    tracking["pose"][0, 0] = np.nan
    np.savez(root / "tracking.npz", **tracking)
    with pytest.raises(DatasetError, match="NaN"):
        Nha().setup(Sequence(Subject(root), "train"), "tiny", "cpu", SEED)
    del tracking["expr"]
    np.savez(root / "tracking.npz", **tracking)
    with pytest.raises(DatasetError, match="lacks 'expr'"):
        Nha().setup(Sequence(Subject(root), "train"), "tiny", "cpu", SEED)


def test_stage1_draws_frames_by_yaw_bin_weights(fitted):
    """With ``stage1_yaw_bin_deg`` stage 1 draws its batches by the yaw-bin weights, later stages
    evenly over frames."""
    method = Nha(stage1_yaw_bin_deg=10.0)
    method.setup(Sequence(fitted["subject"], "train"), "tiny", "cpu", SEED)
    n = method.expr.shape[0]
    assert method.stage1_frame_weights.shape == (n,) and n > 2
    method.stage1_frame_weights = torch.zeros(n)
    method.stage1_frame_weights[[1, 3]] = 1.0  # only two frames can be drawn in stage 1
    drawn, select = [], method.frames.select
    method.frames.select = lambda idx: drawn.append(sorted(idx.tolist())) or select(idx)
    cfg = method.cfg
    stage2_start = round(cfg.iterations * cfg.stage_fractions[0])
    for step in (0, 1, stage2_start, stage2_start + 1):
        method.train_iteration(step)
    assert drawn[0] == drawn[1] == [1, 3]
    assert any(i not in (1, 3) for batch in drawn[2:] for i in batch)


def test_nonfinite_steps_are_skipped_then_refused(fitted, monkeypatch):
    """A step whose loss is NaN leaves every parameter as it was and is marked in the log row;
    MAX_NONFINITE_STEPS of them in a row stop the fit with an error naming the step."""
    method = Nha()
    method.setup(Sequence(fitted["subject"], "train"), "tiny", "cpu", SEED)
    energies = method._energies

    def poisoned(*args, **kwargs):
        terms = energies(*args, **kwargs)
        return {**terms, "reg_expr": terms["reg_expr"] * float("nan")}

    monkeypatch.setattr(method, "_energies", poisoned)
    before, expr = _snapshot(method), method.expr.detach().clone()
    row = method.train_iteration(0)
    assert row["skipped_nonfinite"] == 1.0 and np.isnan(row["loss"])
    assert _same(before["geometry"], _snapshot(method)["geometry"]) and torch.equal(expr, method.expr.detach())
    for step in range(1, MAX_NONFINITE_STEPS - 1):
        method.train_iteration(step)
    with pytest.raises(NhaBenchError, match=f"up to step {MAX_NONFINITE_STEPS - 1}"):
        method.train_iteration(MAX_NONFINITE_STEPS - 1)
    monkeypatch.setattr(method, "_energies", energies)
    assert "skipped_nonfinite" not in method.train_iteration(0)
