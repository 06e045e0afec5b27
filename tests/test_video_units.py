"""Unit tests of the video-preparation pieces against hand-made inputs with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nha_bench.datasets.video.crop import CropWindow, fit_window, smooth_head_track, source_intrinsics
from nha_bench.datasets.video.decode import select_indices
from nha_bench.datasets.video.errors import VideoError, frame_ranges
from nha_bench.datasets.video.split import make_splits, yaw_proxy
from nha_bench.errors import UnavailableError


def test_select_indices_subsamples_to_nearest_frames():
    assert select_indices(10, 30.0, None, None) == (tuple(range(10)), 30.0)
    assert select_indices(10, 30.0, 15.0, None) == ((0, 2, 4, 6, 8), 15.0)
    assert select_indices(10, 30.0, 10.0, None) == ((0, 3, 6, 9), 10.0)
    assert select_indices(10, 25.0, 10.0, 3) == ((0, 2, 5), 10.0)  # steps of 2.5 frames, rounded
    assert select_indices(10, 30.0, 60.0, None)[1] == 30.0  # no upsampling
    with pytest.raises(VideoError):
        select_indices(10, 30.0, -1.0, None)


def test_frame_ranges_text():
    assert frame_ranges([7, 1, 2, 3]) == "1-3, 7"
    assert frame_ranges([]) == ""


def test_crop_maps_a_drawn_dot_where_the_intrinsics_project_it():
    """A 3D point projected with the source camera, drawn as a blob and cropped/resized with cv2,
    lands (intensity centroid) where the crop intrinsics project the same point."""
    K = source_intrinsics(400, 300)
    assert K[0, 0] == K[1, 1] == 600 and (K[0, 2], K[1, 2]) == (200, 150)
    window = CropWindow(x0=110, y0=40, side=200, res=128)
    point = np.array([0.013, -0.021, 0.5])
    uv = (K @ point)[:2] / point[2]  # continuous pixel coordinates, pixel centres at +0.5
    yy, xx = np.mgrid[0:300, 0:400] + 0.5
    frame = np.exp(-((xx - uv[0]) ** 2 + (yy - uv[1]) ** 2) / (2 * 4.0**2))
    frame = np.repeat((frame * 255).astype(np.float32)[..., None], 3, axis=2)
    crop = window.apply(frame)[..., 0]
    cy, cx = np.mgrid[0:128, 0:128] + 0.5
    centroid = np.array([(crop * cx).sum(), (crop * cy).sum()]) / crop.sum()
    Kc = window.intrinsics(K)
    expected = (Kc @ point)[:2] / point[2]
    assert np.allclose(centroid, expected, atol=0.05)
    assert np.allclose(window.points(uv[None]), expected[None], atol=1e-4)


def test_smooth_head_track_removes_an_outlier_and_fills_gaps():
    boxes = np.tile(np.array([100.0, 120.0, 200.0, 220.0]), (30, 1))
    boxes[10] = [0, 0, 50, 50]  # one-frame detector outlier
    boxes[20] = np.nan  # no face
    track = smooth_head_track(boxes)
    size = 1.9 * 100
    assert np.allclose(track, [150.0, 170.0 - 0.12 * 100, size], atol=1e-6)


def test_fit_window_contains_every_head_box_and_clamps():
    track = np.array([[200.0, 150.0, 100.0], [240.0, 160.0, 100.0]])
    faces = np.array([[170.0, 120, 230, 180], [210, 130, 270, 190]])
    fit = fit_window(track, faces, 640, 480, 256)
    w = fit.window
    # union of the boxes: [150, 290] x [100, 210] -> side 140, centred at (220, 155)
    assert (w.side, fit.clamped, fit.outside) == (140, False, ())
    assert (w.x0, w.y0) == (150, 85)
    big = fit_window(np.array([[50.0, 50, 300]]), np.array([[-10.0, 0, 120, 130]]), 200, 160, 128)
    assert big.clamped and big.window.side == 160 and big.window.x0 == 0 and big.outside == (0,)


def _landmarks_with_nose_at(r: np.ndarray) -> np.ndarray:
    lm = np.zeros((len(r), 68, 2))
    lm[:, 0, 0], lm[:, 16, 0] = 100.0, 200.0
    lm[:, 30, 0] = 100.0 + 100.0 * r
    return lm


def test_yaw_proxy_known_values():
    yaw = yaw_proxy(_landmarks_with_nose_at(np.array([0.5, 0.75, 0.25, 1.0])))
    assert np.allclose(yaw, [0.0, 30.0, -30.0, 90.0])


def test_halves_move_a_block_so_train_sees_both_sides():
    n = 100
    yaw = np.zeros(n)
    yaw[10:20] = 30.0  # right side in the train half
    yaw[70:84] = -30.0  # left side only in the val half (14 frames)
    valid = np.ones(n, bool)
    valid[50] = False  # a frame without a face is in no split
    splits, notes = make_splits(yaw, valid, "halves")
    moved = set(range(70, 84)) & set(splits["train"])
    assert len(moved) == 7 and sorted(moved) == list(range(74, 81))  # centred (mid 77), half of val's 14 frames
    assert 50 not in splits["train"] + splits["val"]
    assert set(splits["train"]).isdisjoint(splits["val"]) and len(splits["train"]) + len(splits["val"]) == 99
    assert len(notes) == 1 and "74-80" in notes[0]


def test_ratio_split_and_errors():
    splits, notes = make_splits(np.zeros(10), np.ones(10, bool), "ratio:0.8")
    assert splits == {"train": list(range(8)), "val": [8, 9]} and notes == []
    for bad in ("thirds", "ratio:1.5", "ratio:x"):
        with pytest.raises(VideoError, match="split"):
            make_splits(np.zeros(10), np.ones(10, bool), bad)


@pytest.fixture(scope="module")
def bisenet_weights(tmp_path_factory) -> Path:
    """A randomly initialised BiSeNet state dict saved like the real checkpoint (with DataParallel prefix)."""
    from nha_bench.datasets.video.bisenet import BiSeNet

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("bisenet") / "79999_iter.pth"
    torch.save({f"module.{k}": v for k, v in BiSeNet(19).state_dict().items()}, path)
    return path


@pytest.fixture
def small_bisenet_input(monkeypatch):
    from nha_bench.datasets.video import bisenet

    monkeypatch.setattr(bisenet, "INPUT_SIZE", 128)  # the checkpoint runs at 512; 128 keeps tests fast


def test_bisenet_loads_a_saved_state_dict_and_maps_labels(tmp_path: Path, bisenet_weights: Path, small_bisenet_input):
    from nha_bench.datasets.format import LABELS
    from nha_bench.datasets.video.bisenet import CELEBAMASK_CLASSES, CELEBAMASK_TO_OURS, BiSeNetParser

    saved = torch.load(bisenet_weights, weights_only=True)
    parser = BiSeNetParser(bisenet_weights)
    for key, value in parser.net.state_dict().items():
        assert torch.equal(saved[f"module.{key}"], value)
    rgb = np.random.default_rng(0).integers(0, 255, (48, 40, 3), dtype=np.uint8)
    labels = parser(rgb)
    assert labels.shape == (48, 40) and labels.dtype == np.uint8 and labels.max() < len(LABELS)
    named = dict(zip(CELEBAMASK_CLASSES, CELEBAMASK_TO_OURS))
    expected = {"background": "background", "skin": "skin_neck", "neck": "skin_neck", "l_eye": "eyes",
                "r_ear": "ears", "hair": "hair", "mouth": "mouth_interior", "u_lip": "skin_neck", "cloth": "clothes"}
    assert {k: LABELS[int(named[k])] for k in expected} == expected

    broken = tmp_path / "other.pth"
    saved.pop("module.ffm.conv1.weight")
    torch.save(saved, broken)
    with pytest.raises(UnavailableError, match="other.pth"):
        BiSeNetParser(broken)
    with pytest.raises(UnavailableError, match="not found"):
        BiSeNetParser(tmp_path / "missing.pth")


def test_bisenet_parsing_path_end_to_end(tmp_path: Path, bisenet_weights: Path, small_bisenet_input):
    """prepare with a (random) BiSeNet checkpoint: the parser's labels are written, restricted to the mask."""
    import warnings

    from nha_bench.datasets import Subject, validate_subject
    from nha_bench.datasets.video import prepare
    from nha_bench.datasets.video.bisenet import MODEL_ID
    from nha_bench.datasets.video.errors import VideoWarning

    clip = Path(__file__).parent / "assets" / "clip_d3.mp4"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VideoWarning)
        out = prepare(clip, tmp_path / "s", res=64, max_frames=2, parsing_weights=bisenet_weights, track=False)
    s = Subject(out)
    assert s.meta.models["parsing"] == MODEL_ID and validate_subject(out) == []
    assert not np.any(s.parsing(0)[~s.mask(0)])
    with pytest.raises(UnavailableError, match="not found"):
        prepare(clip, tmp_path / "t", parsing_weights=tmp_path / "none.pth", track=False)
    assert not (tmp_path / "t").exists()
