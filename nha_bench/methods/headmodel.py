"""The tracked head model as an avatar (the paper's Table 1 "FLAME" baseline).

Nothing is trained: the tracker's shape, per-vertex albedo and per-frame expression, pose,
translation and SH lighting (``tracking.npz``, written by :mod:`nha_bench.tracking`) are rendered
as they are, for the test frames too (the protocol lets a method use the test frames' tracked
parameters). RGB is albedo x SH shading on a black background (``metrics.protocol``); normals are
camera-space (OpenCV); meshes are the head surface (head region without the mouth socket) in mm in
the camera frame, with "face" and "head" vertex masks.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from nha_bench.datasets.format import Subject
from nha_bench.errors import DatasetError
from nha_bench.head import HeadParams, evaluation_surface, load_head_model
from nha_bench.mesh import Mesh
from nha_bench.method import Method, Renders, Sequence
from nha_bench.registry import METHODS
from nha_bench.tracking.camera import head_vertices_camera
from nha_bench.tracking.objective import render_shaded
from nha_bench.tracking.shading import ambient_sh

STATE_FILE = "headmodel.npz"
PER_FRAME = ("expr", "pose", "translation", "sh")
BATCH = 4  # frames rendered at once


@METHODS.register("headmodel")
class TrackedHeadModel(Method):
    """Renders the tracked head model (shape, albedo, lighting from the tracker)."""

    name = "headmodel"
    display_name = "Tracked head model"
    provides = frozenset({"rgb", "normal", "mesh"})
    presets = ("tiny", "paper")
    gpu_presets = frozenset()
    reference_baseline = True
    # Table 1 "FLAME" rows, averaged over the paper's four synthetic subjects.
    paper_scores: ClassVar[dict[str, float]] = {
        "normal_error": 14.725,
        "hausdorff_face": 1.225,
        "hausdorff_full": 5.525,
    }

    def __init__(self) -> None:
        self.model = None
        self.shared: dict[str, np.ndarray] = {}
        self.device = torch.device("cpu")
        self._tracking_hash = ""

    def config(self) -> dict:
        return {"head_model": str(self.shared.get("model", "")), "tracking_sha256": self._tracking_hash}

    def setup(self, train: Sequence, preset: str, device: str, seed: int) -> None:
        """Read the subject's tracking (shape, albedo, model id) and build the head model."""
        self.device = torch.device(device)
        data = _read_tracking(train.subject)
        self._tracking_hash = hashlib.sha256((train.subject.root / "tracking.npz").read_bytes()).hexdigest()[:16]
        self._set_shared({k: data[k] for k in ("shape", "albedo", "model") if k in data}, train.subject.root / "tracking.npz")

    def _set_shared(self, shared: dict[str, np.ndarray], source: Path) -> None:
        self.model = load_head_model(str(shared["model"])).to(self.device)
        if np.asarray(shared["shape"]).shape != (self.model.n_shape,):
            raise DatasetError(
                f"shape has {np.asarray(shared['shape']).shape} coefficients, head model {shared['model']!s} has "
                f"{self.model.n_shape}", source, fix="re-run the tracker with this head model")
        if "albedo" not in shared:  # tracked without the photometric term: uniform grey
            shared["albedo"] = np.full((self.model.n_vertices, 3), 0.5, np.float32)
        if shared["albedo"].shape != (self.model.n_vertices, 3):
            raise DatasetError(
                f"albedo has shape {shared['albedo'].shape}, expected ({self.model.n_vertices}, 3)", source,
                fix="re-run the tracker with this head model")
        self.shared = shared
        self._mesh_vertices, self._mesh_faces, self._mesh_masks = evaluation_surface(self.model)

    def num_iterations(self) -> int:
        return 0

    def train_iteration(self, step: int) -> dict[str, float]:
        return {}  # nothing to train (num_iterations() is 0)

    def render(self, test: Sequence) -> Renders:
        """RGB, normals and head meshes of the test frames from their tracked parameters."""
        data = _read_tracking(test.subject)
        idx = test.indices
        frames = {k: data[k][idx] if k in data else None for k in PER_FRAME}
        if frames["sh"] is None:
            frames["sh"] = ambient_sh(len(idx)).numpy()
        H, W = test.size
        K = torch.as_tensor(test.K, device=self.device)
        faces = self.model.faces
        albedo = torch.as_tensor(self.shared["albedo"], device=self.device)
        rgb, normal, meshes = [], [], []
        for start in range(0, len(idx), BATCH):
            sl = slice(start, start + BATCH)
            b = len(idx[sl])
            params = HeadParams.from_numpy_dict(
                {"shape": np.repeat(self.shared["shape"][None], b, 0), "expr": frames["expr"][sl],
                 "pose": frames["pose"][sl], "translation": frames["translation"][sl]}, device=self.device)
            with torch.no_grad():
                verts = head_vertices_camera(self.model, params)
                sh = torch.as_tensor(frames["sh"][sl], device=self.device)
                colour, n, _ = render_shaded(verts, faces, albedo, sh, K, (H, W))
            rgb.append(colour.clamp(0, 1).cpu().numpy())
            normal.append(n.cpu().numpy())
            mm = verts.cpu().numpy().astype(np.float64) * 1e3
            meshes += [Mesh(v[self._mesh_vertices], self._mesh_faces, dict(self._mesh_masks)) for v in mm]
        return Renders(indices=list(idx), rgb=np.concatenate(rgb).astype(np.float32),
                       normal=np.concatenate(normal).astype(np.float32), meshes=meshes)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(directory / STATE_FILE, **self.shared, tracking_sha256=np.asarray(self._tracking_hash))

    def load(self, directory: Path) -> None:
        path = directory / STATE_FILE
        if not path.is_file():
            raise DatasetError("headmodel checkpoint is missing", path, fix="re-run with --force")
        with np.load(path) as d:
            shared = {k: d[k] for k in d.files if k != "tracking_sha256"}
            self._tracking_hash = str(d["tracking_sha256"])
        self._set_shared(shared, path)


def _read_tracking(subject: Subject) -> dict[str, np.ndarray]:
    """tracking.npz with its per-frame arrays checked against the subject's frame count."""
    data = subject.tracking()
    path = subject.root / "tracking.npz"
    missing = [k for k in ("shape", "expr", "pose", "translation", "model") if k not in data]
    if missing:
        raise DatasetError(f"tracking.npz lacks {missing}", path, fix="re-run the tracker (`nha-bench data prepare`)")
    n = subject.meta.n_frames
    for key in PER_FRAME:
        if key in data and (len(data[key]) != n or not np.isfinite(data[key]).all()):
            raise DatasetError(f"tracking.npz {key!r} must have {n} finite rows, has {data[key].shape}", path,
                               fix="re-run the tracker")
    return data
