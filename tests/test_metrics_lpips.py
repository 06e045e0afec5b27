"""LPIPS: full code path with a stand-in trunk, a numpy re-computation of the formula, weight
discovery / unavailability, and (where ``import lpips`` works) the real package."""

from __future__ import annotations

import hashlib
import importlib.util
import sys

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from nha_bench.errors import UnavailableError
from nha_bench.metrics.base import ImageBatch
from nha_bench.metrics.lpips import (
    ALEXNET_FILE,
    ENV_ALEXNET,
    ENV_LINEAR,
    LPIPS,
    find_linear_weights,
    random_backbone_state_dict,
)
from nha_bench.metrics.protocol import composite_on_background

from conftest import load_script

CHANNELS = (64, 192, 384, 256, 256)


def random_linear(seed: int = 1) -> dict[str, torch.Tensor]:
    """Non-negative 1x1 weights like lpips' trained ones (a stand-in for the wheel's file)."""
    g = torch.Generator().manual_seed(seed)
    return {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) * 0.1
            for k, c in enumerate(CHANNELS)}


def images(n: int, h: int, w: int, seed: int) -> ImageBatch:
    rng = np.random.default_rng(seed)
    target = rng.random((n, h, w, 3)).astype(np.float32)
    pred = np.clip(target + rng.normal(0, 0.15, target.shape), 0, 1).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    mask = ((yy - h / 2) / (0.45 * h)) ** 2 + ((xx - w / 2) / (0.4 * w)) ** 2 < 1
    return ImageBatch(pred, target, np.repeat(mask[None], n, axis=0))


# ------------------------------------------------- numpy re-computation of LPIPS v0.1 (alex)

# torchvision AlexNet.features: (index, stride, padding) of each conv; max-pools 3x3/2 after
# the relus of conv 0 and conv 3; the five relu outputs are the LPIPS layers.
CONVS = ((0, 4, 2), (3, 1, 2), (6, 1, 1), (8, 1, 1), (10, 1, 1))


def np_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int) -> np.ndarray:
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    k = w.shape[-1]
    windows = sliding_window_view(x, (k, k), axis=(1, 2))[:, ::stride, ::stride]
    return np.einsum("chwij,ocij->ohw", windows, w) + b[:, None, None]


def np_maxpool(x: np.ndarray) -> np.ndarray:
    return sliding_window_view(x, (3, 3), axis=(1, 2))[:, ::2, ::2].max(axis=(-1, -2))


def np_lpips(x: np.ndarray, y: np.ndarray, sd: dict, lin: dict) -> float:
    """LPIPS of two (H, W, 3) images in [0, 1], float64 numpy, from the paper's formula."""
    shift = np.array([-0.030, -0.088, -0.188])[:, None, None]
    scale = np.array([0.458, 0.448, 0.450])[:, None, None]

    def features(img: np.ndarray) -> list[np.ndarray]:
        h = ((2 * img.transpose(2, 0, 1).astype(np.float64) - 1) - shift) / scale
        out = []
        for layer, (index, stride, pad) in enumerate(CONVS):
            if layer in (1, 2):
                h = np_maxpool(h)
            w = sd[f"features.{index}.weight"].double().numpy()
            b = sd[f"features.{index}.bias"].double().numpy()
            h = np.maximum(np_conv(h, w, b, stride, pad), 0)
            out.append(h)
        return out

    total = 0.0
    for k, (fx, fy) in enumerate(zip(features(x), features(y), strict=True)):
        fx = fx / (np.sqrt((fx**2).sum(0, keepdims=True)) + 1e-10)
        fy = fy / (np.sqrt((fy**2).sum(0, keepdims=True)) + 1e-10)
        w = lin[f"lin{k}.model.1.weight"].double().numpy().reshape(-1, 1, 1)
        total += float((w * (fx - fy) ** 2).sum(0).mean())
    return total


@pytest.fixture(scope="module")
def stand_in() -> LPIPS:
    return LPIPS(backbone_state_dict=random_backbone_state_dict(0),
                 linear_state_dict=random_linear(), device="cpu")


def test_matches_numpy_recomputation_on_composited_frames(stand_in):
    batch = images(2, 67, 75, seed=0)
    scores = stand_in.score(batch)
    pred, target = composite_on_background(batch)
    sd, lin = random_backbone_state_dict(0), random_linear()
    expected = [np_lpips(pred[i], target[i], sd, lin) for i in range(2)]
    assert np.allclose(scores.values, expected, rtol=1e-4, atol=1e-6)
    assert np.all(scores.values > 1e-3)


def test_identical_and_outside_mask_differences_score_zero(stand_in):
    batch = images(3, 64, 64, seed=1)
    other_outside = np.where(batch.mask[..., None], batch.target, 1 - batch.target)
    scores = stand_in.score(ImageBatch(other_outside, batch.target, batch.mask))
    assert np.allclose(scores.values, 0.0, atol=1e-7)


def test_stand_in_is_marked_not_comparable(stand_in):
    result = stand_in.summarize([stand_in.score(images(2, 64, 64, seed=2))])
    assert result.comparable is False and "stand-in" in result.backend
    assert result.value is not None and result.n_frames == 2
    assert result.spec.higher_is_better is False


def test_chunking_does_not_change_values():
    batch = images(5, 64, 64, seed=3)
    one = LPIPS(backbone_state_dict=random_backbone_state_dict(0),
                linear_state_dict=random_linear(), device="cpu", chunk=2).score(batch)
    other = LPIPS(backbone_state_dict=random_backbone_state_dict(0),
                  linear_state_dict=random_linear(), device="cpu", chunk=5).score(batch)
    assert np.allclose(one.values, other.values, rtol=1e-5)


# ------------------------------------------------- weights: discovery and unavailability


def test_missing_alexnet_weights_make_metric_unavailable(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_ALEXNET, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    metric = LPIPS(linear_state_dict=random_linear(), device="cpu")
    reason = metric.unavailable_reason()
    assert ALEXNET_FILE in reason and str(tmp_path / "hub" / "checkpoints") in reason
    assert ENV_ALEXNET in reason and "download.pytorch.org" in reason
    with pytest.raises(UnavailableError, match=ALEXNET_FILE):
        metric.score(images(1, 64, 64, seed=0))
    result = metric.summarize([])
    assert result.value is None and result.unavailable_reason == reason


def test_env_path_to_missing_file_is_reported(tmp_path, monkeypatch):
    missing = tmp_path / "nope.pth"
    monkeypatch.setenv(ENV_ALEXNET, str(missing))
    monkeypatch.setenv(ENV_LINEAR, str(tmp_path / "lin.pth"))
    metric = LPIPS(device="cpu")
    assert f"{ENV_ALEXNET}: {missing}" in metric.unavailable_reason()
    metric = LPIPS(backbone_state_dict=random_backbone_state_dict(), device="cpu")
    assert f"{ENV_LINEAR}: {tmp_path / 'lin.pth'}" in metric.unavailable_reason()


def test_weight_files_load_and_wrong_checkpoint_is_refused(tmp_path, monkeypatch):
    sd = random_backbone_state_dict(0)
    sd["classifier.1.weight"] = torch.zeros(2, 2)  # a full torchvision state dict has these too
    path = tmp_path / "hub" / "checkpoints" / ALEXNET_FILE
    path.parent.mkdir(parents=True)
    torch.save(sd, path)
    torch.save(random_linear(), tmp_path / "alex.pth")
    monkeypatch.delenv(ENV_ALEXNET, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    metric = LPIPS(linear_weights=tmp_path / "alex.pth", device="cpu")
    assert "is not torchvision's" in metric.unavailable_reason()  # random file, wrong sha256
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setattr("nha_bench.metrics.lpips.ALEXNET_SHA256_PREFIX", digest[:8])
    metric = LPIPS(linear_weights=tmp_path / "alex.pth", device="cpu")
    assert metric.unavailable_reason() is None
    assert metric.comparable and metric.backend == "lpips-0.1-alex"
    batch = images(2, 64, 64, seed=4)
    stand_in = LPIPS(backbone_state_dict=random_backbone_state_dict(0),
                     linear_state_dict=random_linear(), device="cpu")
    assert np.allclose(metric.score(batch).values, stand_in.score(batch).values)


def test_linear_weights_found_in_lpips_wheel_without_importing_it(monkeypatch):
    if importlib.util.find_spec("lpips") is None:
        pytest.skip("lpips wheel not installed (pip install --no-deps lpips==0.1.4)")
    monkeypatch.delenv(ENV_LINEAR, raising=False)
    imported_before = "lpips" in sys.modules
    path, looked = find_linear_weights()
    assert path is not None and path.as_posix().endswith("lpips/weights/v0.1/alex.pth")
    assert imported_before or "lpips" not in sys.modules
    weights = torch.load(path, map_location="cpu", weights_only=True)
    assert [tuple(weights[f"lin{k}.model.1.weight"].shape) for k in range(5)] == [
        (1, c, 1, 1) for c in CHANNELS
    ]


# ------------------------------------------------- the real lpips package, when importable


def test_matches_real_lpips_package_with_same_trunk():
    try:
        import lpips  # noqa: F401  (needs torchvision)
    except Exception as error:  # ImportError, or torchvision failing to load its ops
        pytest.skip(f"lpips package not importable here: {error!r}")
    diff, ours, ref = load_script("gpu_lpips_check").max_abs_difference("cpu", n=2, height=96, width=128, seed=0)
    assert diff < 1e-5 * max(1.0, float(ref.abs().max())) and float(ref.min()) > 1e-3
