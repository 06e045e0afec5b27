"""The head-model interface: FLAME-style parameters in, posed vertices out.

Frame convention for every head model: metres, y up, z towards the viewer (FLAME's), head roughly
centred at the origin. Cameras elsewhere are OpenCV-style; the tracker converts.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor

from nha_bench.errors import NhaBenchError
from nha_bench.head.face_outline import landmark_outline_mask

N_POSE = 15  # axis-angle: global(0:3), neck(3:6), jaw(6:9), left eye(9:12), right eye(12:15)
POSE_SLICES = {
    "global": slice(0, 3),
    "neck": slice(3, 6),
    "jaw": slice(6, 9),
    "eye_left": slice(9, 12),
    "eye_right": slice(12, 15),
}
REGION_NAMES = ("face", "scalp", "ears", "eyes", "neck", "mouth", "head")


@dataclass
class HeadParams:
    """Batched head-model parameters for B frames (torch tensors)."""

    shape: Tensor  # (B, n_shape)
    expr: Tensor  # (B, n_expr)
    pose: Tensor  # (B, 15) axis-angle, see N_POSE
    translation: Tensor  # (B, 3) metres

    @classmethod
    def zeros(
        cls, model: "HeadModel", batch: int, device: torch.device | str | None = None
    ) -> "HeadParams":
        """All-zero parameters (neutral template, zero pose) for ``batch`` frames."""
        dev = device if device is not None else model.canonical_vertices.device
        z = lambda n: torch.zeros(batch, n, dtype=torch.float32, device=dev)  # noqa: E731
        return cls(z(model.n_shape), z(model.n_expr), z(N_POSE), z(3))

    @property
    def batch_size(self) -> int:
        return int(self.pose.shape[0])

    def to(self, device: torch.device | str) -> "HeadParams":
        """A copy with every tensor on ``device``."""
        return HeadParams(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def to_numpy_dict(self) -> dict[str, np.ndarray]:
        """Detached float32 arrays keyed shape / expr / pose / translation (for npz files)."""
        return {
            f.name: getattr(self, f.name).detach().cpu().numpy().astype(np.float32)
            for f in fields(self)
        }

    @classmethod
    def from_numpy_dict(
        cls, d: dict[str, np.ndarray], device: torch.device | str | None = None
    ) -> "HeadParams":
        """Inverse of :meth:`to_numpy_dict`; raises NhaBenchError on missing keys or bad shapes."""
        missing = [f.name for f in fields(cls) if f.name not in d]
        if missing:
            raise NhaBenchError(
                f"head parameters lack {missing}", fix="store shape, expr, pose and translation"
            )
        out = {f.name: torch.as_tensor(np.asarray(d[f.name]), dtype=torch.float32, device=device)
               for f in fields(cls)}
        params = cls(**out)
        params.check()
        return params

    def check(self, model: "HeadModel | None" = None) -> "HeadParams":
        """Raise NhaBenchError if shapes disagree with each other or with ``model``."""
        b = self.pose.shape[0] if self.pose.ndim == 2 else -1
        want = {"pose": N_POSE, "translation": 3}
        if model is not None:
            want.update(shape=model.n_shape, expr=model.n_expr)
        for f in fields(self):
            t = getattr(self, f.name)
            if t.ndim != 2 or t.shape[0] != b or (f.name in want and t.shape[1] != want[f.name]):
                raise NhaBenchError(
                    f"head parameter {f.name!r} has shape {tuple(t.shape)}, expected "
                    f"({b if b >= 0 else 'B'}, {want.get(f.name, 'n')})",
                    fix="parameters were saved for another head model or batch; re-track",
                )
        return self


class HeadModel(torch.nn.Module):
    """Base class: subclasses set the buffers below and implement :meth:`forward`.

    Buffers: ``faces`` (F, 3) long, ``canonical_vertices`` (V, 3) metres, ``landmark_faces``
    (68,) long, ``landmark_bary`` (68, 3), and one bool buffer ``region_<name>`` (V,) per region
    (read them through :attr:`regions`).
    """

    name: str = "head"
    n_shape: int
    n_expr: int
    faces: Tensor
    canonical_vertices: Tensor
    landmark_faces: Tensor
    landmark_bary: Tensor

    def _set_topology(
        self,
        faces: np.ndarray | Tensor,
        canonical_vertices: np.ndarray | Tensor,
        regions: dict[str, np.ndarray | Tensor],
        landmark_faces: np.ndarray | Tensor,
        landmark_bary: np.ndarray | Tensor,
    ) -> None:
        """Register the topology buffers shared by every head model."""
        self.register_buffer("faces", torch.as_tensor(np.asarray(faces), dtype=torch.long))
        self.register_buffer(
            "canonical_vertices", torch.as_tensor(np.asarray(canonical_vertices), dtype=torch.float32)
        )
        self._region_names = tuple(regions)
        for k, m in regions.items():
            self.register_buffer(f"region_{k}", torch.as_tensor(np.asarray(m), dtype=torch.bool))
        self.register_buffer(
            "landmark_faces", torch.as_tensor(np.asarray(landmark_faces), dtype=torch.long)
        )
        self.register_buffer(
            "landmark_bary", torch.as_tensor(np.asarray(landmark_bary), dtype=torch.float32)
        )

    @property
    def regions(self) -> dict[str, Tensor]:
        """Vertex masks (V,) bool: face, scalp, ears, eyes, neck, mouth, head (+ model extras)."""
        return {k: getattr(self, f"region_{k}") for k in self._region_names}

    @property
    def n_vertices(self) -> int:
        return int(self.canonical_vertices.shape[0])

    def forward(self, params: HeadParams) -> Tensor:  # pragma: no cover - abstract
        """Posed vertices (B, V, 3) in metres, model/world frame."""
        raise NotImplementedError

    def landmarks(self, vertices: Tensor) -> Tensor:
        """iBUG-68 landmarks (B, 68, 3) from vertices (B, V, 3) via the barycentric embedding."""
        tri = vertices[:, self.faces[self.landmark_faces]]  # (B, 68, 3 corners, 3 xyz)
        return (tri * self.landmark_bary[None, :, :, None]).sum(dim=2)


def scored_face_mask(model: HeadModel) -> np.ndarray:
    """(V,) bool: the ``face`` the geometry metrics score on a head model's mesh (and align on): the
    model's own ``face`` region where it lies inside the ground truth's outline
    (``face_outline.FACE_OUTLINE_RULE``, drawn on the canonical head), without eyeballs. Inside the
    outline, no prediction sample lies past the ground truth's face (where it would measure to that
    face's edge, +0.3-0.9 mm on the synthetic subjects); inside the model's region, none lies on the
    scalp, which a method may grow into the hair (NHA's G does; on ICT the raised-brow outline takes
    in a band of scalp above the face region). reports/nha/README.md, session 12."""
    with torch.no_grad():
        landmarks = model.landmarks(model.canonical_vertices[None])[0].cpu().numpy()
    outline = landmark_outline_mask(model.canonical_vertices.cpu().numpy(), landmarks)
    regions = {name: model.regions[name].cpu().numpy() for name in ("face", "eyes")}
    return outline & regions["face"] & ~regions["eyes"]


def evaluation_surface(model: HeadModel) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(vertex ids, faces re-indexed to them, the mesh's ``face``/``head`` vertex masks) of the
    surface the geometry metrics score: the head region without the mouth socket, an inner surface
    that no ground-truth mesh has. Every method built on a head model exports this part of it, so
    all are scored on the same surface; its ``face`` is ``scored_face_mask``."""
    regions, faces = model.regions, model.faces.cpu().numpy()
    surface = (regions["head"] & ~regions["mouth"]).cpu().numpy()
    kept = faces[surface[faces].all(1)]
    vertex_ids, inverse = np.unique(kept, return_inverse=True)
    masks = {"face": scored_face_mask(model)[vertex_ids], "head": np.ones(len(vertex_ids), bool)}
    return vertex_ids, inverse.reshape(-1, 3), masks


def embed_vertices_as_landmarks(faces: np.ndarray, vertex_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each vertex id, one face containing it and the barycentric weights selecting it."""
    faces = np.asarray(faces)
    lmk_faces = np.empty(len(vertex_ids), dtype=np.int64)
    bary = np.zeros((len(vertex_ids), 3), dtype=np.float32)
    for i, v in enumerate(np.asarray(vertex_ids)):
        hit = np.argwhere(faces == v)
        if len(hit) == 0:
            raise NhaBenchError(f"landmark vertex {v} is in no face of the mesh")
        lmk_faces[i] = hit[0, 0]
        bary[i, hit[0, 1]] = 1.0
    return lmk_faces, bary
