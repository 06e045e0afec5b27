"""Synthetic generator: pure helpers, errors, the committed tiny fixture, and (if bpy/mhcore are
installed) one tiny end-to-end generation."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
from scipy.ndimage import binary_dilation
from typer.testing import CliRunner

from nha_bench.cli import app
from nha_bench.datasets import Subject, validate_subject
from nha_bench.datasets.synthetic import pipeline as generate_mod
from nha_bench.datasets.synthetic import post, spec
from nha_bench.datasets.synthetic.assets import makehuman_root
from nha_bench.errors import ExistsError, UnavailableError

FIXTURE = Path(__file__).resolve().parents[1] / "nha_bench" / "datasets" / "fixtures" / "tiny"


def _fixture_subjects() -> list[Path]:
    return sorted(p.parent for p in FIXTURE.glob("*/meta.json"))


# --- pure helpers -------------------------------------------------------------------------------

def test_look_at_is_opencv_camera():
    eye, target = np.array([0.3, 0.2, 1.0]), np.array([0.0, 0.1, 0.0])
    R, t = spec.look_at(eye, target)
    assert np.allclose(R @ R.T, np.eye(3)) and np.isclose(np.linalg.det(R), 1.0)
    assert np.allclose(R @ eye + t, 0)  # camera centre
    in_cam = R @ target + t
    assert np.allclose(in_cam[:2], 0) and in_cam[2] > 0  # target straight ahead (+z)
    above = R @ (target + [0, 0.1, 0]) + t
    assert above[1] < 0  # world up is image up, i.e. camera y points down


def test_project_matches_hand_computation():
    K = spec.intrinsics(100)  # f = 240, c = 50
    pts = np.array([[0.0, 0.0, 2.0], [0.1, -0.2, 1.0]])
    assert np.allclose(post.project(pts, K), [[50, 50], [74, 2]])


def test_cap_edges_close_an_open_tube_with_matching_winding():
    quads = np.array([[0, 1, 5, 4], [1, 2, 6, 5], [2, 3, 7, 6], [3, 0, 4, 7]])  # bottom ring 0-3 open
    near = np.array([True] * 4 + [False] * 4)
    # each side face walks its bottom edge a -> b; the cap must walk it b -> a
    assert post.cap_edges(quads, near).tolist() == [[0, 3], [1, 0], [2, 1], [3, 2]]
    assert len(post.cap_edges(quads, ~near)) == 4 and len(post.cap_edges(quads, np.zeros(8, bool))) == 0


def test_triangulate_quads_and_marked_triangles():
    quads = np.array([[0, 1, 2, 3], [4, 5, 6, 6], [7, 8, 9, 7]])
    tris = post.triangulate(quads)
    assert sorted(map(tuple, tris.tolist())) == sorted([(0, 1, 2), (0, 2, 3), (4, 5, 6), (7, 8, 9)])


def test_srgb_curve_known_values():
    assert np.allclose(post.srgb(np.array([0.0, 0.0031308, 0.18, 1.0, 2.0])),
                       [0.0, 0.04045, 0.46135, 1.0, 1.0], atol=1e-4)


def test_labels_from_passes():
    kinds = ["body", "eyes", "eyebrows", "eyelashes", "teeth", "tongue", "hair"]
    index = np.array([[0, 1, 1, 1], [2, 3, 5, 7]], np.float32)
    ch = {"Object Index.X": index,
          "ear.X": np.array([[0, 0, 1, 0], [0, 0, 0, 0]], np.float32),
          "backface.X": np.array([[0, 0, 0, 1], [0, 0, 0, 0]], np.float32)}
    mask = np.array([[True, True, True, True], [True, True, True, True]])
    lab = post.labels(ch, kinds, mask)
    # background inside the mask = semi-transparent hair; body 1, ear 3, mouth 5, eyes 2, brows 1, teeth 5, hair 4
    assert lab.tolist() == [[4, 1, 3, 5], [2, 1, 5, 4]]
    mask[0, 1] = False
    assert post.labels(ch, kinds, mask)[0, 1] == 0


def test_sequence_is_seeded_and_validation_is_novel():
    frames, splits, views = spec.sequence(200, 210, seed=3)
    again, _, _ = spec.sequence(200, 210, seed=3)
    assert frames == again and frames != spec.sequence(200, 210, seed=4)[0]
    assert splits["train"] == list(range(200)) and splits["val"] == list(range(200, 410))
    train_units = {u for f in frames[:200] for u in f["units"]}
    val_units = {u for f in frames[200:] for u in f["units"]}
    val_only = {u for units, _ in spec.VAL_ONLY_CHANNELS.values() for u in units}
    assert not train_units & val_only and val_units & val_only
    yaw, pitch = (np.array([f[k] for f in frames]) for k in ("yaw", "pitch"))
    n_turn = round(200 * spec.TRAIN_TURN_FRACTION)
    # the head turn shows both sides; the rest of training stays within the limits
    assert yaw[:n_turn].max() > spec.TRAIN_TURN_YAW - 5 and yaw[:n_turn].min() < -spec.TRAIN_TURN_YAW + 5
    assert np.abs(yaw[n_turn:200]).max() <= spec.TRAIN_LIMITS[0] + 1e-6
    assert np.abs(pitch[200:]).max() > spec.TRAIN_LIMITS[1]  # poses beyond the training range
    assert np.abs(np.diff(yaw[:200])).max() < 10  # smooth: under 10 degrees per frame
    assert views.count("novel") == 60 and views[-1] == "novel" and set(views[:200]) == {"front"}


def test_head_turn_amplitude_changes_only_the_turn_frames():
    frames, _, _ = spec.sequence(200, 210, seed=3)
    wide, _, _ = spec.sequence(200, 210, seed=3, turn_yaw=85.0)
    n_turn = round(200 * spec.TRAIN_TURN_FRACTION)
    assert wide[n_turn:] == frames[n_turn:]  # the rest of training and all validation frames
    assert max(f["yaw"] for f in wide[:n_turn]) > 80 and min(f["yaw"] for f in wide[:n_turn]) < -80


def test_novel_cameras_orbit_the_head():
    target = np.array([0.0, 0.8, 0.1])
    R, t = spec.cameras(["front", "novel"], target, seed=0)
    centres = [-Ri.T @ ti for Ri, ti in zip(R, t)]
    assert np.isclose(np.linalg.norm(centres[1] - target), spec.CAMERA_DISTANCE_M)
    angle = np.degrees(np.arccos(np.clip(R[0][2] @ R[1][2], -1, 1)))
    assert spec.NOVEL_VIEW_YAW[0] - 1 <= angle <= np.hypot(spec.NOVEL_VIEW_YAW[1], spec.NOVEL_VIEW_PITCH) + 1


def test_frame_arrays_on_hand_made_passes(tmp_path):
    """A camera at +z looking at the origin: world +z normals become OpenCV (0, 0, -1); the
    triangle projects where K says; a landmark behind the surface is marked hidden."""
    res = 8
    K = spec.intrinsics(res)
    R, t = spec.look_at(np.array([0.0, 0.0, 1.0]), np.zeros(3))
    verts = np.array([[0.0, 0.0, 0.0], [0.01, 0.0, 0.0], [0.0, 0.01, 0.0], [0.0, 0.0, -0.05]], np.float32)
    ctx = post.FrameContext(K=K, res=res, kinds=["body", "hair"], n_body=4, body_faces=np.array([[0, 1, 2]]),
                            vertex_masks={"face": np.ones(4, bool), "head": np.ones(4, bool)},
                            landmark_ids=np.array([0, 3]), work=tmp_path)
    alpha = np.zeros((res, res), np.float32)
    alpha[2:6, 2:6] = 1
    colour = np.zeros((res, res, 4), np.float32)
    colour[..., 3] = alpha
    colour[..., :3] = 0.5 * alpha[..., None]  # premultiplied grey
    ch = {"Combined": colour, "Normal.X": np.zeros((res, res), np.float32), "Normal.Y": np.zeros((res, res), np.float32),
          "Normal.Z": alpha.copy(), "Depth.Z": np.where(alpha > 0, 1.0, 1e10).astype(np.float32),
          "Object Index.X": alpha.copy(), "ear.X": np.zeros((res, res), np.float32),
          "backface.X": np.zeros((res, res), np.float32)}
    out = post.frame_arrays(ch, verts, R, t, ctx)
    assert np.allclose(out["normal"][3, 3], [0, 0, -1]) and (out["normal"][0, 0] == 0).all()
    assert out["mask"].sum() == 16 and (out["parsing"][out["mask"]] == 1).all()
    assert np.isclose(out["rgb"][3, 3, 0], post.srgb(np.array(0.5))) and np.allclose(out["rgb"][0, 0], 1.0)
    assert np.allclose(out["mesh"].vertices[1], [10.0, 0.0, 1000.0])  # mm, camera frame: +x stays right
    assert np.allclose(out["landmarks"][0], [res / 2, res / 2, 1.0])  # on the surface: visible
    assert out["landmarks"][1, 2] == 0.0  # 5 cm behind the surface: hidden


def test_makehuman_archive_is_extracted_once(tmp_path, monkeypatch):
    import tarfile

    src = tmp_path / "src" / "data" / "3dobjs"
    src.mkdir(parents=True)
    (src / "base.obj").write_text("v 0 0 0\n")
    archive = tmp_path / "mh.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        tar.add(tmp_path / "src" / "data", arcname="data")
    monkeypatch.setattr("nha_bench.datasets.synthetic.assets._archive_candidates", lambda: [archive])
    root = makehuman_root(tmp_path / "cache")
    assert (root / "data" / "3dobjs" / "base.obj").read_text() == "v 0 0 0\n"
    archive.unlink()  # second call needs no archive
    assert makehuman_root(tmp_path / "cache") == root


def test_regions_json_is_consistent():
    regions = post.load_regions()
    assert len(regions["landmarks"]) == 68 and len(set(regions["landmarks"])) == 68
    assert not set(regions["ears"]) & set(regions["face"])
    assert set(regions["landmarks"][17:]) <= set(regions["face"]) | set(regions["landmarks"][:17])


# --- errors -------------------------------------------------------------------------------------

def test_missing_makehuman_data_names_the_folder(tmp_path, monkeypatch):
    monkeypatch.setattr("nha_bench.datasets.synthetic.assets._archive_candidates", lambda: [])
    with pytest.raises(UnavailableError, match="MakeHuman data not found") as err:
        makehuman_root(tmp_path / "nowhere")
    assert "nowhere" in str(err.value) and "NHA_BENCH_MAKEHUMAN_DATA" in str(err.value)


def test_missing_packages_raise_with_install_hint(tmp_path, monkeypatch):
    monkeypatch.setattr(generate_mod, "missing_requirements", lambda: ["bpy==5.0.1"])
    with pytest.raises(UnavailableError, match="pip install bpy==5.0.1"):
        generate_mod.generate(tmp_path)


@pytest.mark.parametrize("kwargs", [{"subjects": 5}, {"subjects": 0}, {"train": 0}, {"res": 8}, {"samples": 0},
                                    {"turn_yaw": 95.0}, {"turn_yaw": -1.0}])
def test_bad_arguments_raise(tmp_path, monkeypatch, kwargs):
    monkeypatch.setattr(generate_mod, "missing_requirements", lambda: [])
    with pytest.raises(generate_mod.NhaBenchError, match="must be|need"):
        generate_mod.generate(tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("args, passed_yaw", [([], None), (["--turn-yaw", "85"], 85.0)])
def test_cli_synth_passes_the_turn_yaw_or_keeps_the_spec_default(tmp_path, monkeypatch, args, passed_yaw):
    seen: dict = {}

    def fake_generate(out, **kwargs):
        seen.update(kwargs)
        return []

    monkeypatch.setattr("nha_bench.datasets.synthetic.generate", fake_generate)
    result = CliRunner().invoke(app, ["data", "synth", "--out", str(tmp_path)] + args)
    assert result.exit_code == 0, result.output
    assert seen.get("turn_yaw") == passed_yaw  # None: not passed, so generate's own default applies
    assert inspect.signature(generate_mod.generate).parameters["turn_yaw"].default == spec.TRAIN_TURN_YAW


def test_existing_subject_of_other_size_needs_force(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "meta.json").write_text(json.dumps({"width": 256, "n_frames": 10}))
    with pytest.raises(ExistsError, match="--force"):
        generate_mod._existing(tmp_path / "s", 512, 10, force=False)
    assert generate_mod._existing(tmp_path / "s", 256, 10, force=False)  # same size: finished, skip
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep me")
    with pytest.raises(ExistsError, match="not a generated subject"):
        generate_mod._existing(tmp_path / "other", 256, 10, force=True)
    assert (tmp_path / "other" / "notes.txt").is_file()


# --- the committed fixture ------------------------------------------------------------------------

def test_fixture_exists_and_validates():
    subjects = _fixture_subjects()
    assert subjects, f"no fixture subject under {FIXTURE}"
    for root in subjects:
        assert validate_subject(root) == []
        s = Subject(root)
        assert set(s.meta.fields) >= {"rgb", "mask", "parsing", "normal", "mesh"}
        assert s.split("train") and s.split("val")


@pytest.mark.parametrize("root", _fixture_subjects(), ids=lambda p: p.name)
def test_fixture_normals_unit_and_facing_camera(root):
    s = Subject(root)
    for i in s.split("train") + s.split("val"):
        n, m, lab = s.normal(i), s.mask(i), s.parsing(i)
        length = np.linalg.norm(n, axis=-1)
        assert np.allclose(length[m & (length > 0)], 1, atol=1e-3)
        assert (length[~m] == 0).all()
        skin = (lab == 1) & (length > 0)
        assert (n[skin][:, 2] < 0).mean() > 0.97  # front surfaces point towards the camera (-z)


@pytest.mark.parametrize("root", _fixture_subjects(), ids=lambda p: p.name)
def test_fixture_normals_agree_with_gt_mesh(root):
    """Independent check of the normal conversion: the mesh's own vertex normals at the pixels
    where visible vertices project."""
    s = Subject(root)
    K = s.meta.K.astype(np.float64)
    for i in (s.split("train")[0], s.split("val")[-1]):
        mesh, n_img, lab = s.mesh(i), s.normal(i), s.parsing(i)
        tm = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
        vn = tm.vertex_normals
        uv = post.project(mesh.vertices, K)
        px = np.floor(uv).astype(int)
        ok = (px >= 0).all(1) & (px < s.meta.width).all(1)
        ok &= mesh.vertex_masks["face"] & (vn[:, 2] < -0.3)  # front-facing face vertices
        ok[ok] &= lab[px[ok, 1], px[ok, 0]] == 1
        cos = (vn[ok] * n_img[px[ok, 1], px[ok, 0]]).sum(1)
        assert ok.sum() > 50 and np.median(cos) > 0.9


@pytest.mark.parametrize("root", _fixture_subjects(), ids=lambda p: p.name)
def test_fixture_mesh_projects_onto_mask(root):
    s = Subject(root)
    K = s.meta.K.astype(np.float64)
    for i in s.split("train") + s.split("val"):
        mesh, m = s.mesh(i), s.mask(i)
        hair = mesh.vertex_masks["hair"]
        assert mesh.vertices[:, 2].min() > 0  # in front of the camera, mm
        assert 150 < np.linalg.norm(np.ptp(mesh.vertices[~hair], axis=0)) < 600  # head and neck skin in mm
        px = np.floor(post.project(mesh.vertices, K)).astype(int)
        inside = (px >= 0).all(1) & (px < s.meta.width).all(1)
        hit = np.zeros(len(px), bool)
        hit[inside] = m[px[inside, 1], px[inside, 0]]
        assert hit[~hair].mean() > 0.97
        # long hair hangs out of the frame; inside it, its thin strand tips may miss the alpha mask
        assert hit[hair & inside].mean() > 0.9


@pytest.mark.parametrize("root", _fixture_subjects(), ids=lambda p: p.name)
def test_fixture_landmarks_on_the_face(root):
    s = Subject(root)
    lmk = s.landmarks()
    assert lmk.shape == (s.meta.n_frames, 68, 3)
    views = s.meta.extra["views"]
    for i in range(s.meta.n_frames):
        m = s.mask(i)
        vis = lmk[i, :, 2] > 0.5
        assert vis.sum() >= (50 if views[i] == "front" else 25)  # long hair may hide the jaw line
        px = np.floor(lmk[i, vis, :2]).astype(int)
        near_mask = binary_dilation(m, iterations=1)  # silhouette points (nose tip in profile) may sit on the edge
        assert near_mask[px[:, 1], px[:, 0]].all()
        lab = s.parsing(i)[px[:, 1], px[:, 0]]
        if views[i] == "front":  # (in profile, half the points sit on the silhouette)
            assert np.isin(lab, [1, 2, 5]).mean() > 0.9  # skin, eyes, mouth: not hair, not background


def test_fixture_is_small():
    size = sum(f.stat().st_size for f in FIXTURE.rglob("*") if f.is_file())
    assert size < 5 * 2**20


# --- end to end -----------------------------------------------------------------------------------

def test_failed_stage_raises_with_its_log_and_stops_the_others(tmp_path):
    import subprocess
    import sys

    from rich.progress import Progress

    log_ok, log_bad = tmp_path / "ok.log", tmp_path / "bad.log"
    log_bad.write_text("Traceback: boom\n")
    slow = subprocess.Popen([sys.executable, "-c", "import time; print('@@frame 0', flush=True); time.sleep(60)"],
                            stdout=subprocess.PIPE, text=True)
    bad = subprocess.Popen([sys.executable, "-c", "import sys; print('@@frame 1'); sys.exit(3)"],
                           stdout=subprocess.PIPE, text=True)
    with Progress(disable=True) as progress:
        task = progress.add_task("t", total=2)
        with pytest.raises(generate_mod.NhaBenchError, match="exit 3") as err:
            generate_mod._follow([(slow, log_ok), (bad, log_bad)], progress, task)
    assert "boom" in str(err.value) and "bad.log" in str(err.value)
    assert slow.poll() is not None  # terminated, not left running


def test_pending_frames_skip_finished_ones(tmp_path):
    from nha_bench.datasets.format import SubjectWriter
    from nha_bench.mesh import Mesh

    writer = SubjectWriter(tmp_path / "s")
    work = tmp_path / "s" / ".work"
    (work / "landmarks").mkdir(parents=True)
    img = np.zeros((4, 4, 3), np.float32)
    mesh = Mesh(np.zeros((3, 3)), np.array([[0, 1, 2]]))
    for i in (0, 2):  # frames 0 and 2 are complete; frame 1 lacks its landmark row
        writer.write_frame(i, rgb=img, mask=np.ones((4, 4), bool), parsing=np.ones((4, 4), np.uint8),
                           normal=img, mesh=mesh)
    writer.write_frame(1, rgb=img, mask=np.ones((4, 4), bool), parsing=np.ones((4, 4), np.uint8), normal=img, mesh=mesh)
    for i in (0, 2):
        np.save(work / "landmarks" / f"{i:06d}.npy", np.zeros((68, 3)))
    (tmp_path / "s" / "mesh" / "000002.npz").unlink()  # killed while writing frame 2
    assert generate_mod.pending_frames(writer, work, 4) == [1, 2, 3]


@pytest.mark.skipif(bool(generate_mod.missing_requirements()),
                    reason=f"needs {generate_mod.missing_requirements()} (synthetic generator extras)")
def test_generate_tiny(tmp_path):
    try:
        makehuman_root()
    except UnavailableError as exc:
        pytest.skip(f"MakeHuman data not available: {exc}")
    out = tmp_path / "synth"
    (root,) = generate_mod.generate(out, subjects=1, train=2, val=1, res=64, samples=4)
    assert validate_subject(root) == []
    assert not (root / ".work").exists()
    params = json.loads((root / "params.json").read_text())
    assert len(params["frames"]) == 3 and params["modifiers"]
    s = Subject(root)
    assert s.mask(0).mean() > 0.05 and set(np.unique(s.parsing(0))) >= {0, 1, 2}
    # a finished subject is skipped, not redone; another size needs --force
    stamp = (root / "meta.json").stat().st_mtime_ns
    generate_mod.generate(out, subjects=1, train=2, val=1, res=64, samples=4)
    assert (root / "meta.json").stat().st_mtime_ns == stamp
    with pytest.raises(ExistsError):
        generate_mod.generate(out, subjects=1, train=2, val=1, res=96, samples=4)


def test_ground_truth_mesh_holds_skin_and_hair(tmp_path):
    """The hair proxy joins the skin in the ground-truth mesh: its triangles index past the skin,
    its vertices carry the 'hair' mask only."""
    skin = np.array([[0.0, 0.0, 1.0], [0.01, 0.0, 1.0], [0.0, 0.01, 1.0]])
    hair = np.array([[0.0, -0.02, 0.99], [0.01, -0.02, 0.99], [0.0, -0.03, 0.99], [0.01, -0.03, 0.99]])
    ctx = post.FrameContext(K=np.eye(3), res=8, kinds=["body", "hair"], n_body=3, body_faces=np.array([[0, 1, 2]]),
                            vertex_masks={"face": np.ones(3, bool), "head": np.ones(3, bool)},
                            landmark_ids=np.array([0]), work=tmp_path, hair_rows=(3, 7),
                            hair_faces=post.triangulate(np.array([[0, 1, 3, 2]])))
    mesh = post.ground_truth_mesh(skin, hair, ctx)
    assert mesh.vertices.shape == (7, 3) and np.allclose(mesh.vertices[3:], hair * 1000.0)
    assert mesh.faces.tolist() == [[0, 1, 2], [3, 4, 6], [3, 6, 5]]
    assert mesh.vertex_masks["hair"].tolist() == [False] * 3 + [True] * 4
    assert not mesh.vertex_masks["head"][3:].any() and mesh.vertex_masks["face"][:3].all()
