"""Protocol helpers, L1 and MS-SSIM against hand-made answers and a numpy MS-SSIM."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from nha_bench.errors import MetricInputError
from nha_bench.metrics.base import ImageBatch
from nha_bench.metrics.image import L1, MSSSIM, MSSSIM_WEIGHTS, msssim_scales
from nha_bench.metrics.protocol import composite_on_background, masked_mean
from nha_bench.registry import METRICS


def textured(n: int, h: int, w: int, seed: int) -> np.ndarray:
    """Smooth random RGB images in [0, 1] (random low-frequency waves + a little noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    out = np.zeros((n, h, w, 3))
    for _ in range(6):
        fx, fy, phase = rng.uniform(1, 12, 3)
        amp = rng.uniform(0.05, 0.15, (n, 1, 1, 3))
        out += amp * np.sin(2 * np.pi * (fx * xx + fy * yy) + phase)[None, ..., None]
    out += rng.normal(0, 0.02, out.shape)
    return np.clip(0.5 + out, 0, 1).astype(np.float32)


def ellipse_mask(n: int, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    inside = ((yy - h / 2) / (0.4 * h)) ** 2 + ((xx - w / 2) / (0.35 * w)) ** 2 < 1
    return np.repeat(inside[None], n, axis=0)


def batch_of(h: int, w: int, n: int = 2, seed: int = 0) -> ImageBatch:
    target = textured(n, h, w, seed)
    pred = np.clip(target + textured(n, h, w, seed + 1) * 0.3 - 0.15, 0, 1).astype(np.float32)
    return ImageBatch(pred, target, ellipse_mask(n, h, w))


# ---------------------------------------------------------------- protocol


def test_composite_sets_outside_mask_to_black_in_both():
    batch = batch_of(20, 24)
    pred, target = composite_on_background(batch)
    outside = ~batch.mask
    assert np.all(pred[outside] == 0) and np.all(target[outside] == 0)
    assert np.array_equal(pred[batch.mask], batch.pred[batch.mask])
    assert np.array_equal(target[batch.mask], batch.target[batch.mask])


def test_masked_mean_matches_boolean_indexing():
    rng = np.random.default_rng(1)
    values = rng.random((3, 5, 6, 3))
    mask = rng.random((3, 5, 6)) > 0.5
    expected = [values[i][mask[i]].mean() for i in range(3)]
    assert np.allclose(masked_mean(values, mask), expected)


def test_exact_fp32_turns_tf32_off_and_restores_it():
    import torch

    from nha_bench.metrics.protocol import exact_fp32

    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    with exact_fp32():
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
        assert not torch.is_grad_enabled()
    assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == before


def good_batch() -> ImageBatch:
    return batch_of(16, 16, n=2)


def with_pred(array: np.ndarray) -> ImageBatch:
    b = good_batch()
    return ImageBatch(array, b.target, b.mask)


@pytest.mark.parametrize("name", ["l1", "msssim", "lpips", "cpbd"])
@pytest.mark.parametrize(
    "make_bad, message",
    [
        (lambda: with_pred(good_batch().pred[:, :8]), "predictions are never resized"),
        (lambda: with_pred(np.where(np.eye(16)[None, ..., None] > 0, np.nan, good_batch().pred)),
         "NaN/inf"),
        (lambda: with_pred(good_batch().pred * 2.0 + 0.1), "outside [0, 1]"),
        (lambda: with_pred((good_batch().pred * 255).astype(np.uint8)), "dtype uint8"),
        (lambda: ImageBatch(good_batch().pred, good_batch().target, np.zeros((2, 16, 16), bool)),
         "mask is empty in batch frames [0, 1]"),
        (lambda: ImageBatch(good_batch().pred, good_batch().target, np.ones((2, 16, 16), np.uint8)),
         "expected bool"),
        (lambda: ImageBatch(good_batch().pred, good_batch().target, np.ones((2, 8, 16), bool)),
         "mask has shape"),
        (lambda: ImageBatch(good_batch().pred[..., 0], good_batch().target[..., 0],
                            good_batch().mask), "expected (N>0, H, W, 3)"),
    ],
)
def test_bad_input_raises_clear_error(name, make_bad, message):
    from nha_bench.metrics.lpips import LPIPS, random_backbone_state_dict

    metric = (
        LPIPS(backbone_state_dict=random_backbone_state_dict(), linear_state_dict=_ones_linear())
        if name == "lpips"
        else METRICS.get(name)()
    )
    with pytest.raises(MetricInputError) as info:
        metric.score(make_bad())
    assert message in str(info.value) and name in str(info.value)


def _ones_linear() -> dict:
    import torch

    return {f"lin{k}.model.1.weight": torch.ones(1, c, 1, 1) for k, c in
            enumerate((64, 192, 384, 256, 256))}


# ---------------------------------------------------------------- L1


def test_l1_hand_made_value_counts_mask_pixels_only():
    target = np.zeros((2, 4, 4, 3), np.float32)
    pred = target.copy()
    mask = np.zeros((2, 4, 4), bool)
    mask[0, :2] = True  # 8 pixels
    pred[0, 0, :, 0] = 0.6  # 4 masked pixels, one channel: 4 * 0.6 / (8 * 3) = 0.1
    pred[0, 3] = 1.0  # outside the mask: ignored
    mask[1, 1, 1] = True
    pred[1, 1, 1] = [0.25, 0.5, 0.75]
    scores = METRICS.get("l1")().score(ImageBatch(pred, target, mask))
    assert np.allclose(scores.values, [0.1, 0.5])


def test_l1_summary():
    metric = L1()
    b = batch_of(32, 32, n=3)
    result = metric.summarize([metric.score(b)])
    expected = np.mean([np.abs(b.pred[i] - b.target[i])[b.mask[i]].mean() for i in range(3)])
    assert result.value == pytest.approx(expected, rel=1e-6)
    assert result.n_frames == 3 and result.spec.higher_is_better is False


# ---------------------------------------------------------------- MS-SSIM (numpy reference)


def _gauss(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    coords = np.arange(size) - size // 2
    g = np.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(image: np.ndarray, g: np.ndarray) -> np.ndarray:
    out = sliding_window_view(image, len(g), axis=0) @ g
    return sliding_window_view(out, len(g), axis=1) @ g


def _avg_pool_2x2(image: np.ndarray) -> np.ndarray:
    """avg_pool2d(kernel 2, padding=size % 2) with zero padding counted, as pytorch-msssim."""
    ph, pw = image.shape[0] % 2, image.shape[1] % 2
    padded = np.pad(image, ((ph, ph), (pw, pw)))
    h, w = padded.shape[0] // 2, padded.shape[1] // 2
    return padded[: 2 * h, : 2 * w].reshape(h, 2, w, 2).mean(axis=(1, 3))


def numpy_ms_ssim(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> float:
    """MS-SSIM (Wang et al. 2003) of two (H, W, 3) images in [0, 1], averaged over channels."""
    c1, c2, g = 0.01**2, 0.03**2, _gauss()
    per_channel = []
    for ch in range(3):
        a, b = x[..., ch].astype(np.float64), y[..., ch].astype(np.float64)
        terms = []
        for level in range(len(weights)):
            mu_a, mu_b = _filter_valid(a, g), _filter_valid(b, g)
            var_a = _filter_valid(a * a, g) - mu_a**2
            var_b = _filter_valid(b * b, g) - mu_b**2
            cov = _filter_valid(a * b, g) - mu_a * mu_b
            cs = (2 * cov + c2) / (var_a + var_b + c2)
            if level < len(weights) - 1:
                terms.append(max(cs.mean(), 0))
                a, b = _avg_pool_2x2(a), _avg_pool_2x2(b)
            else:
                luminance = (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1)
                terms.append(max((luminance * cs).mean(), 0))
        per_channel.append(np.prod(np.power(terms, weights)))
    return float(np.mean(per_channel))


def test_msssim_five_scales_matches_numpy_reference_on_composited_frames():
    batch = batch_of(170, 181, n=2)
    metric = MSSSIM(device="cpu")
    scores = metric.score(batch)
    assert metric.backend == "pytorch-msssim"
    pred, target = composite_on_background(batch)
    expected = [numpy_ms_ssim(pred[i], target[i], np.array(MSSSIM_WEIGHTS)) for i in range(2)]
    assert np.allclose(scores.values, expected, atol=2e-5)
    assert 0.2 < scores.values.min() and scores.values.max() < 0.999


def test_msssim_small_images_use_fewer_renormalised_scales():
    assert msssim_scales(161) == 5 and msssim_scales(160) == 4 and msssim_scales(81) == 4
    assert msssim_scales(80) == 3 and msssim_scales(41) == 3 and msssim_scales(11) == 1
    with pytest.raises(MetricInputError, match="too small"):
        msssim_scales(10)
    batch = batch_of(64, 72, n=2, seed=3)
    metric = MSSSIM(device="cpu")
    scores = metric.score(batch)
    assert metric.backend == "pytorch-msssim-3scales"
    weights = np.array(MSSSIM_WEIGHTS[:3]) / np.sum(MSSSIM_WEIGHTS[:3])
    pred, target = composite_on_background(batch)
    expected = [numpy_ms_ssim(pred[i], target[i], weights) for i in range(2)]
    assert np.allclose(scores.values, expected, atol=2e-5)
    with pytest.raises(MetricInputError, match="earlier ones used 3"):
        metric.score(batch_of(100, 100))


def test_msssim_identical_is_one_and_ignores_outside_mask():
    batch = batch_of(48, 48, n=2)
    noisy_outside = np.where(batch.mask[..., None], batch.target, 1.0 - batch.target)
    scores = MSSSIM(device="cpu").score(ImageBatch(noisy_outside, batch.target, batch.mask))
    assert np.allclose(scores.values, 1.0, atol=1e-6)
