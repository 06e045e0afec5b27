"""Face landmarks behind a small interface: a 468-point face mesh per face (mediapipe) for detection,
cropping and region masks, and 68-point iBUG landmarks from mediapipe (index map) or dlib."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Protocol

import numpy as np

from nha_bench.datasets.video.errors import import_mediapipe
from nha_bench.errors import UnavailableError

# mediapipe 468-vertex face mesh -> 68-point iBUG/Multi-PIE order (jaw 0-16, brows 17-26, nose
# 27-35, eyes 36-47, outer lips 48-59, inner lips 60-67). Start: the widely used community map;
# jaw points 3, 4, 6, 9, 10, 12, 13 replaced by the mesh vertex closest on average to dlib's
# 68-point predictor over 168 frames of the four shared clips (the jaw of the community map sat
# 0.12-0.18 inter-ocular distances away from dlib's; now every point is <= 0.13, mean 0.053).
MP_TO_IBUG68 = (
    127, 234, 93, 215, 138, 136, 149, 176, 152, 377, 378, 365, 397, 435, 323, 454, 356,  # jaw
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,  # brows (image left, then image right)
    168, 197, 5, 4, 75, 97, 2, 326, 305,  # nose bridge, nostrils
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,  # eyes
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,  # outer lips
    78, 82, 13, 312, 308, 317, 14, 87,  # inner lips
)
MESH_POINTS = 468


class FaceMesh:
    """mediapipe 0.10.14 legacy ``solutions.face_mesh`` in video mode; returns every face found."""

    model_id = "mediapipe==0.10.14 solutions.face_mesh (468 points)"

    def __init__(self, max_faces: int = 3):
        mp = import_mediapipe()
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=False, max_num_faces=max_faces, refine_landmarks=False, min_detection_confidence=0.5
        )

    def __call__(self, frame: np.ndarray) -> list[np.ndarray]:
        """All faces in an RGB uint8 frame as (468, 3) arrays: x, y in pixels, z (mediapipe scale, pixels)."""
        h, w = frame.shape[:2]
        result = self._mesh.process(frame)
        faces = []
        for face in result.multi_face_landmarks or []:
            pts = np.array([[p.x, p.y, p.z] for p in face.landmark], dtype=np.float32)
            faces.append(pts * np.array([w, h, w], dtype=np.float32))
        return faces

    def close(self) -> None:
        self._mesh.close()


def mesh_to_ibug68(mesh: np.ndarray) -> np.ndarray:
    """(..., 468, C) face-mesh points -> (..., 68, 2) iBUG landmarks."""
    return mesh[..., list(MP_TO_IBUG68), :2]


class Landmarks68(Protocol):
    """A 68-point iBUG landmark model: ``model_id`` names it in meta.json."""

    model_id: str

    def __call__(self, frame: np.ndarray, mesh: np.ndarray) -> np.ndarray:
        """(68, 2) pixel landmarks of the face whose face mesh is ``mesh`` (468, 3)."""
        ...


class MediapipeLandmarks:
    """68 points taken from the face mesh through MP_TO_IBUG68."""

    model_id = "mediapipe==0.10.14 face_mesh -> iBUG-68 (nha_bench MP_TO_IBUG68)"

    def __call__(self, frame: np.ndarray, mesh: np.ndarray) -> np.ndarray:
        return mesh_to_ibug68(mesh)


def dlib_model_file(name: str) -> Path:
    """Path of a .dat model shipped by the PyPI package face-recognition-models (not imported:
    its __init__ needs pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise UnavailableError("face-recognition-models is not installed", fix="pip install face-recognition-models")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.is_file():
        raise UnavailableError(f"{name} is missing from face-recognition-models", path, fix="reinstall face-recognition-models")
    return path


class DlibLandmarks:
    """dlib's 68-point shape predictor (iBUG-300W), run in the box of dlib's HOG detection that
    overlaps the face mesh most, or in the face-mesh box when HOG finds nothing."""

    model_id = "dlib shape_predictor_68_face_landmarks (face-recognition-models 0.3.0)"

    def __init__(self):
        try:
            import dlib
        except ImportError as exc:
            raise UnavailableError("dlib is not installed", fix="pip install dlib-bin") from exc
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(dlib_model_file("shape_predictor_68_face_landmarks.dat")))

    def __call__(self, frame: np.ndarray, mesh: np.ndarray) -> np.ndarray:
        x0, y0 = mesh[:, :2].min(axis=0)
        x1, y1 = mesh[:, :2].max(axis=0)
        best, best_iou = None, 0.2
        for rect in self._detector(frame, 0):
            ix = max(0.0, min(x1, rect.right()) - max(x0, rect.left()))
            iy = max(0.0, min(y1, rect.bottom()) - max(y0, rect.top()))
            inter = ix * iy
            union = (x1 - x0) * (y1 - y0) + rect.width() * rect.height() - inter
            if inter / union > best_iou:
                best, best_iou = rect, inter / union
        if best is None:
            best = self._dlib.rectangle(int(x0), int(y0), int(x1), int(y1))
        shape = self._predictor(frame, best)
        # dlib returns integer pixel indices; +0.5 moves them to our pixel-centre convention
        return np.array([[shape.part(k).x + 0.5, shape.part(k).y + 0.5] for k in range(68)], dtype=np.float32)


LANDMARK_MODELS: dict[str, type] = {"mediapipe": MediapipeLandmarks, "dlib": DlibLandmarks}


def landmark_model(name: str) -> Landmarks68:
    """The 68-point landmark model called ``name`` (a key of LANDMARK_MODELS)."""
    if name not in LANDMARK_MODELS:
        raise UnavailableError(f"unknown landmark model {name!r}", fix=f"use one of {sorted(LANDMARK_MODELS)}")
    return LANDMARK_MODELS[name]()
