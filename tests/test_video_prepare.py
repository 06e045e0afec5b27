"""End-to-end `prepare` on a 12-frame clip cut from d3.mp4, plus bad-input cases."""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import imageio.v2 as imageio
import numpy as np
import pytest

from nha_bench.datasets import Subject, validate_subject
from nha_bench.datasets.video import pipeline, prepare
from nha_bench.datasets.video.errors import VideoError, VideoWarning
from nha_bench.datasets.video.landmarks import DlibLandmarks, FaceMesh, mesh_to_ibug68
from nha_bench.datasets.video.parsing import EYES, HAIR, SKIN, SKIN_DISTANCE, _gauss, _mahal, fallback_parsing, mesh_regions, _poly
from nha_bench.errors import ExistsError, UnavailableError

CLIP = Path(__file__).parent / "assets" / "clip_d3.mp4"  # d3.mp4 frames 0, 6, ..., 66 at 192x192, 5 fps


def _frames() -> list[np.ndarray]:
    return [f for f in imageio.get_reader(CLIP)]


def _write(path: Path, frames: list[np.ndarray], fps: float = 5) -> Path:
    writer = imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=16)
    for frame in frames:
        writer.append_data(frame)
    writer.close()
    return path


@pytest.fixture(scope="module")
def subject(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("real") / "d3clip"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VideoWarning)
        return prepare(CLIP, out, res=128, track=False)


def test_prepared_subject_is_valid_and_complete(subject: Path):
    assert validate_subject(subject) == []
    s = Subject(subject)
    meta = s.meta
    assert (meta.n_frames, meta.width, meta.height, meta.fps) == (12, 128, 128, 5.0)
    assert sorted(meta.splits["train"] + meta.splits["val"]) == list(range(12))
    assert meta.splits["train"][:6] == list(range(6))
    assert set(meta.fields) == {"rgb", "mask", "parsing"} and "normal" not in meta.fields
    assert set(meta.models) >= {"landmarks", "mask", "parsing"}
    # the 192x192 frame is the crop window (head box with hair margin exceeds it): K = source K * 128/192
    assert meta.extra["crop"] == {"x0": 0, "y0": 0, "side": 192, "res": 128}
    assert np.allclose(meta.K, [[1.5 * 128, 0, 64], [0, 1.5 * 128, 64], [0, 0, 1]])
    assert not (subject / ".prepare" / "analysis.tmp.npz").exists()


def test_landmarks_and_parsing_agree_with_the_image(subject: Path):
    s = Subject(subject)
    lm = s.landmarks()
    assert lm.shape == (12, 68, 3) and np.all(lm[..., 2] == 1.0)
    # independent check of landmarks: dlib's 68-point predictor on the source frames, scaled to 128 px
    dlib_model, mesh_model = DlibLandmarks(), FaceMesh(max_faces=1)
    frames = _frames()
    for i in (0, 11):
        ref = dlib_model(frames[i], mesh_model(frames[i])[0]) * (128 / 192)
        iod = np.linalg.norm(ref[36:42].mean(0) - ref[42:48].mean(0))
        err = np.linalg.norm(lm[i, :, :2] - ref, axis=1) / iod
        assert err.mean() < 0.12 and err.max() < 0.35, (i, err.round(2))
    for i in range(12):
        labels, mask = s.parsing(i), s.mask(i)
        assert np.all(labels[~mask] == 0) and np.all(labels[mask] > 0)
        for eye in (lm[i, 36:42, :2], lm[i, 42:48, :2]):
            x, y = eye.mean(0).astype(int)
            assert labels[y, x] == EYES
        x, y = lm[i, 30, :2].astype(int)  # nose tip
        assert labels[y, x] == SKIN
        assert mask[y, x]


def test_resume_recreates_missing_files_and_force_is_needed(subject: Path, tmp_path: Path):
    work = tmp_path / "copy"
    import shutil

    shutil.copytree(subject, work)
    rgb3 = (work / "rgb" / "000003.png").read_bytes()
    (work / "meta.json").unlink()  # a killed run: no meta.json yet
    (work / "rgb" / "000003.png").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VideoWarning)
        prepare(CLIP, work, res=128, track=False)
    assert (work / "rgb" / "000003.png").read_bytes() == rgb3
    assert validate_subject(work) == []
    with pytest.raises(ExistsError, match="--force"):
        prepare(CLIP, work, res=128, track=False)
    (work / "meta.json").unlink()
    with pytest.raises(ExistsError, match="other settings"):
        prepare(CLIP, work, res=96, track=False)


def test_fps_max_frames_and_dlib_landmarks(tmp_path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VideoWarning)
        out = prepare(CLIP, tmp_path / "s", res=64, fps=2.5, max_frames=4, split="ratio:0.5", track=False, landmarks="dlib")
    meta = Subject(out).meta
    assert meta.fps == 2.5 and meta.n_frames == 4 and meta.extra["source_frames"] == [0, 2, 4, 6]
    assert "dlib" in meta.models["landmarks"] and meta.splits == {"train": [0, 1], "val": [2, 3]}
    assert validate_subject(out) == []


def test_frames_without_face_and_several_faces_are_reported(tmp_path: Path):
    frames = _frames()[:6]
    gray = np.full_like(frames[0], 128)
    video = _write(tmp_path / "gaps.mp4", [frames[0], gray, gray, *frames[1:4], gray, frames[4]])
    with pytest.warns(VideoWarning, match=r"no face in source frames 1-2, 6"):
        out = prepare(video, tmp_path / "gaps", res=64, track=False)
    s = Subject(out)
    assert sorted(s.meta.splits["train"] + s.meta.splits["val"]) == [0, 3, 4, 5, 7]
    assert s.meta.extra["frames_without_face"] == [1, 2, 6]
    assert np.all(s.landmarks()[[1, 2, 6], :, 2] == 0)
    assert validate_subject(out) == []

    small = cv2.resize(frames[0], (112, 112), interpolation=cv2.INTER_AREA)
    pad = np.full((192, 192, 3), 128, np.uint8)
    pad[40:152, 40:152] = small
    two = np.concatenate([frames[0], pad], axis=1)  # the larger face on the left
    video = _write(tmp_path / "two.mp4", [two] * 3)
    with pytest.warns(VideoWarning, match=r"several faces in source frames 0-2"):
        out = prepare(video, tmp_path / "two", res=64, track=False)
    assert Subject(out).meta.extra["crop"]["x0"] < 96  # crop on the large (left) face


@pytest.mark.parametrize(
    "content, match",
    [(b"", "cannot open|no frames"), (b"\x00garbage" * 50, "cannot open|no frames|cannot count")],
)
def test_unreadable_video(tmp_path: Path, content: bytes, match: str):
    video = tmp_path / "broken.mp4"
    video.write_bytes(content)
    with pytest.raises(VideoError, match=match) as info:
        prepare(video, tmp_path / "s", track=False)
    assert "broken.mp4" in str(info.value)
    assert not (tmp_path / "s" / "meta.json").exists()


def test_no_face_tiny_and_missing_video(tmp_path: Path):
    gray = _write(tmp_path / "gray.mp4", [np.full((96, 96, 3), 128, np.uint8)] * 4)
    with pytest.raises(VideoError, match="no face found in any of the 4 frames") as info:
        prepare(gray, tmp_path / "g", res=64, track=False)
    assert "gray.mp4" in str(info.value) and not (tmp_path / "g" / "meta.json").exists()
    tiny = _write(tmp_path / "tiny.mp4", [np.full((32, 32, 3), 128, np.uint8)] * 2)
    with pytest.raises(VideoError, match="too small"):
        prepare(tiny, tmp_path / "t", track=False)
    with pytest.raises(VideoError, match="does not exist"):
        prepare(tmp_path / "nope.mp4", tmp_path / "n", track=False)


def test_unsupported_options_fail_before_work(tmp_path: Path, monkeypatch):
    with pytest.raises(UnavailableError, match="Abrevaya"):
        prepare(CLIP, tmp_path / "a", normal_weights=tmp_path / "normals.pth", track=False)
    with pytest.raises(UnavailableError, match="landmark"):
        prepare(CLIP, tmp_path / "b", landmarks="sift", track=False)

    def no_tracker(name: str):
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(pipeline.importlib, "import_module", no_tracker)
    with pytest.raises(UnavailableError, match="track_subject"):
        prepare(CLIP, tmp_path / "c", track=True)
    assert not (tmp_path / "c").exists()


def test_mesh_to_ibug68_indexing():
    mesh = np.arange(468 * 3, dtype=np.float32).reshape(468, 3)
    lm = mesh_to_ibug68(mesh)
    assert lm.shape == (68, 2) and lm[8, 0] == 152 * 3 and lm[30, 1] == 4 * 3 + 1  # chin, nose tip


def test_a_run_killed_mid_frames_leaves_no_meta_and_resumes(tmp_path: Path, monkeypatch):
    calls = {"n": 0}
    real = pipeline.fallback_parsing

    def dies_at_frame_5(*args):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt  # what a Ctrl-C in the middle of the frame stage looks like
        return real(*args)

    monkeypatch.setattr(pipeline, "fallback_parsing", dies_at_frame_5)
    out = tmp_path / "s"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VideoWarning)
        with pytest.raises(KeyboardInterrupt):
            prepare(CLIP, out, res=64, track=False)
        assert not (out / "meta.json").exists() and sorted(p.name for p in (out / "rgb").iterdir()) == [
            f"{i:06d}.png" for i in range(5)
        ]
        assert not list(out.rglob("*.tmp"))  # no half-written file
        first = (out / "parsing" / "000004.png").stat().st_mtime_ns
        monkeypatch.setattr(pipeline, "fallback_parsing", real)
        prepare(CLIP, out, res=64, track=False)
    assert (out / "parsing" / "000004.png").stat().st_mtime_ns == first  # kept, not recomputed
    assert validate_subject(out) == []


def test_tracking_is_called_after_meta_and_resumed_alone(subject: Path, tmp_path: Path, monkeypatch):
    """The wiring to nha_bench.tracking, with a stand-in tracker that records its calls."""
    import shutil

    calls = []

    def fake_track_subject(root: Path, **options) -> Path:
        s = Subject(root)  # the subject must be complete (meta.json) when the tracker runs
        calls.append(options)
        if len(calls) == 1:
            raise RuntimeError("tracker crashed")
        n = s.meta.n_frames
        np.savez(root / "tracking.npz", shape=np.zeros(10), expr=np.zeros((n, 5)), pose=np.zeros((n, 15)),
                 translation=np.zeros((n, 3)), model=np.asarray("ict"))
        return root / "tracking.npz"

    monkeypatch.setattr(pipeline, "tracker", lambda: fake_track_subject)
    out = tmp_path / "tracked"
    shutil.copytree(subject, out)
    (out / "meta.json").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VideoWarning)
        with pytest.raises(RuntimeError, match="crashed"):
            prepare(CLIP, out, res=128, track=True, track_options={"device": "cpu"})
        assert (out / "meta.json").exists() and not (out / "tracking.npz").exists()
        prepare(CLIP, out, res=128, track=True, track_options={"device": "cpu"})  # only tracks
    assert calls == [{"device": "cpu"}, {"device": "cpu"}]
    assert Subject(out).meta.models["tracking"] == "nha_bench.tracking.track_subject (ict)"
    assert validate_subject(out) == []
    with pytest.raises(ExistsError):
        prepare(CLIP, out, res=128, track=True)



def test_contact_sheet_layout(subject: Path, tmp_path: Path):
    from nha_bench.datasets.format import LABEL_COLOURS
    from nha_bench.datasets.video.contact import write_contact_sheet

    path = write_contact_sheet(subject, tmp_path / "sheet.png", n_rows=2, tile=64)
    sheet = imageio.imread(path)
    assert sheet.shape == (128, 256, 3)  # 2 frames x (frame | mask | parsing | landmarks), no tracking
    s = Subject(subject)
    mask_tile = sheet[64:128, 64:128, 0]  # second row = last frame (11), mask column
    expected = cv2.resize(s.mask(11).astype(np.uint8) * 255, (64, 64), interpolation=cv2.INTER_AREA)
    assert np.abs(mask_tile.astype(int) - expected).mean() < 2
    assert len(LABEL_COLOURS) == 7


def test_fallback_parsing_tells_skin_coloured_hair_from_skin():
    """Light-brown hair that passes the skin-colour threshold is hair above the chin (it is nearer
    the colour above the face); neck skin below the chin stays skin. Painted image, real face mesh."""
    frame = _frames()[0]
    mesh = FaceMesh(max_faces=1)(frame)[0]
    h, w = frame.shape[:2]
    face = _poly((h, w), mesh, mesh_regions()["oval"])
    oval_top = mesh[np.unique(np.concatenate(mesh_regions()["oval"])), 1].min()
    chin_y = mesh[152, 1]
    ys = np.arange(h)[:, None].repeat(w, 1)
    rng = np.random.default_rng(0)
    image = np.full((h, w, 3), (205.0, 160.0, 135.0)) + rng.normal(0, 6, (h, w, 3))  # skin (face, neck)
    hair = ~face & (ys < chin_y)
    image[hair] += (-10.0, -10.0, -12.0)  # light brown hair, close to the skin colour
    image = np.clip(image, 0, 255).astype(np.uint8)
    mask = np.ones((h, w), bool)
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    skin_model = _gauss(lab[cv2.erode(face.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)])
    assert np.median(_mahal(lab[hair], skin_model)) < SKIN_DISTANCE  # the threshold alone calls it skin
    labels = fallback_parsing(image, mask, mesh)
    assert (labels[hair & (ys < oval_top)] == HAIR).mean() > 0.9
    assert (labels[~face & (ys > chin_y + 5)] == SKIN).mean() > 0.9
