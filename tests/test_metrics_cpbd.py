"""CPBD against the reference ``cpbd`` 1.0.7 package (run under an imread shim) and by hand."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import scipy.ndimage
from PIL import Image
from scipy.ndimage import gaussian_filter

from nha_bench.metrics.base import ImageBatch
from nha_bench.metrics.cpbd import CPBD, _run_left, _run_right, cpbd_gray, marziliano_widths
from nha_bench.metrics.protocol import composite_on_background

pytest.importorskip("skimage")


@pytest.fixture(scope="module")
def reference_cpbd():
    """cpbd.compute with the removed ``scipy.ndimage.imread`` shimmed by PIL (what scipy did)."""
    added = not hasattr(scipy.ndimage, "imread")
    if added:
        scipy.ndimage.imread = lambda path, mode="L": np.asarray(Image.open(path).convert(mode))
    try:
        compute = pytest.importorskip("cpbd.compute").compute
        yield compute, scipy.ndimage.imread
    finally:
        if added:
            del scipy.ndimage.imread


@cache
def scene(seed: int, h: int = 192, w: int = 256, supersample: int = 4) -> np.ndarray:
    """Natural-ish RGB image in [0, 1]: anti-aliased coloured disks and boxes on a gradient."""
    rng = np.random.default_rng(seed)
    yy, xx = (np.mgrid[0 : h * supersample, 0 : w * supersample] + 0.5) / supersample
    img = np.stack([0.15 + 0.1 * xx / w, 0.2 + 0.1 * yy / h, 0.25 + 0 * xx], axis=-1)
    for _ in range(12):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(8, 50)
        if rng.random() < 0.5:
            inside = (xx - cx) ** 2 + (yy - cy) ** 2 < r**2
        else:
            a = rng.uniform(0, np.pi)
            u = (xx - cx) * np.cos(a) + (yy - cy) * np.sin(a)
            v = -(xx - cx) * np.sin(a) + (yy - cy) * np.cos(a)
            inside = (np.abs(u) < r) & (np.abs(v) < r * rng.uniform(0.3, 1))
        img = np.where(inside[..., None], rng.uniform(0.05, 0.95, 3), img)
    img = img.reshape(h, supersample, w, supersample, 3).mean(axis=(1, 3))
    return np.clip(img + rng.normal(0, 0.008, img.shape), 0, 1)


def blurred(img: np.ndarray, sigma: float) -> np.ndarray:
    return gaussian_filter(img, (sigma, sigma, 0)) if sigma else img


def head_mask(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return ((yy - h / 2) / (0.47 * h)) ** 2 + ((xx - w / 2) / (0.45 * w)) ** 2 < 1


def reference_on_png(reference, frame: np.ndarray, path) -> float:
    """The reference's own pipeline: an 8-bit PNG read back as 'L', then cpbd.compute."""
    compute, imread = reference
    Image.fromarray(np.round(frame * 255).astype(np.uint8)).save(path)
    return float(compute(imread(str(path), mode="L")))


def test_matches_reference_package_through_the_protocol(reference_cpbd, tmp_path):
    sigmas = (0, 0.6, 1.2, 2.5)
    preds = np.stack([blurred(scene(s), sigma) for s in (0, 1) for sigma in sigmas])
    targets = np.stack([scene(s) for s in (0, 1) for _ in sigmas])
    batch = ImageBatch(preds.astype(np.float32), targets.astype(np.float32),
                       np.repeat(head_mask(192, 256)[None], len(preds), axis=0))
    scores = CPBD().score(batch)
    pred, target = composite_on_background(batch)
    expected = [reference_on_png(reference_cpbd, f, tmp_path / "p.png") for f in pred]
    expected_gt = [reference_on_png(reference_cpbd, f, tmp_path / "t.png") for f in target]
    assert np.allclose(scores.values, expected, atol=1e-9, rtol=0)
    assert np.allclose(scores.extras["cpbd_gt"], expected_gt, atol=1e-9, rtol=0)
    # not a degenerate agreement: sharp frames score well, and blur lowers the score
    per_scene = scores.values.reshape(2, len(sigmas))
    assert np.all(per_scene[:, 0] > 0.4) and np.all(np.diff(per_scene, axis=1) <= 0)
    assert np.all(per_scene[:, 0] > per_scene[:, -1] + 0.3)


@pytest.mark.parametrize(
    "make",
    [
        lambda: np.round(scene(5, 130, 200)[..., 0] * 255),  # not a multiple of the block size
        lambda: np.round(gaussian_filter(np.random.default_rng(2).uniform(0, 255, (128, 128)), 2)),
        lambda: np.round(scene(6, 40, 300)[..., 1] * 255),  # no full 64 px block: 0
        lambda: np.tile(np.round(np.linspace(0, 255, 128)), (128, 1)),  # only 0-degree gradients
        lambda: np.full((96, 96), 128.0),  # flat
    ],
)
def test_grayscale_core_matches_reference(reference_cpbd, make):
    gray = make().astype(np.uint8)
    compute, _ = reference_cpbd
    assert cpbd_gray(gray) == pytest.approx(float(compute(gray)), abs=1e-12)


def test_run_lengths_match_brute_force():
    cond = np.random.default_rng(0).random((6, 40)) < 0.7
    for r in range(cond.shape[0]):
        for c in range(cond.shape[1]):
            left = 0
            while c - left >= 0 and cond[r, c - left]:
                left += 1
            right = 0
            while c + right < cond.shape[1] and cond[r, c + right]:
                right += 1
            assert _run_left(cond)[r, c] == left and _run_right(cond)[r, c] == right


def test_hand_made_edge_width():
    """A dark-to-bright ramp 30 -> 220 in 4 equal steps: the edge pixel in the ramp's middle
    sees 2 rising steps on its left and 2 on its right (Marziliano width 4). Like the
    reference, an image whose gradient angles are all 0 gets no widths at all."""
    profile = np.array([30, 30, 30, 30, 77.5, 125, 172.5, 220, 220, 220, 220.0])
    image = np.tile(profile, (5, 1))
    edges = np.zeros(image.shape, bool)
    edges[2, 5] = True
    assert np.count_nonzero(marziliano_widths(edges, image)) == 0
    image[0, 0] = 0  # one non-zero angle elsewhere (rows 1-3 near the edge are unchanged)
    widths = marziliano_widths(edges, image)
    assert widths[2, 5] == 4 and np.count_nonzero(widths) == 1
