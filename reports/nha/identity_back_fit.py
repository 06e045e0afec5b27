"""Can the head model's identity space (a) represent a subject's back of the head and (b) predict it
from the rest of the head? On one training frame with NHA's fitted expression and pose (no offsets),
the identity coefficients are fitted (ridge, weight LAM) to the ground-truth surface by closest points,
alternating with the metric's face-anchored similarity (anchored on the head model's own `face` region,
not the scored face): once on the head without the back (normals
within 35° of straight back, not the crown), once on the whole head. Prints the mean distance of the
head, of the part without the back, and of the back, for the tracked shape, the fit's own shape (alone
and with G's offsets) and the fitted ones.
Run as: python reports/nha/identity_back_fit.py SUBJECT CHECKPOINT_DIR FRAME [OVERRIDES_JSON]"""
import json
import sys

import numpy as np
import torch

from nha_bench.datasets.format import Subject
from nha_bench.head.base import HeadParams
from nha_bench.mesh import Mesh
from nha_bench.method import Sequence
from nha_bench.methods.nha import Nha
from nha_bench.metrics.geometry import align_to_head, point_surface_distances, region_mesh, transform
from nha_bench.tracking.camera import model_to_camera

BACK_DEG = 35.0
ITERATIONS = 6
torch.set_num_threads(2)
subject = Subject(sys.argv[1])
method = Nha.fitted(subject, sys.argv[2], json.loads(sys.argv[4] if len(sys.argv) > 4 else "{}"))
frame = torch.tensor([int(sys.argv[3])])
avatar = method.avatar
regions = {k: v.numpy().astype(bool) for k, v in avatar.head.regions.items()}
head = regions["face"] | regions["scalp"] | regions["ears"]
normals = avatar.template_normals.numpy()
horizontal = normals[:, [0, 2]] / np.maximum(np.linalg.norm(normals[:, [0, 2]], axis=1, keepdims=True), 1e-9)
back = head & (np.degrees(np.arccos(np.clip(-horizontal[:, 1], -1, 1))) < BACK_DEG) & (normals[:, 1] < 0.6)
rest = head & ~back
faces = avatar.faces.numpy()
gt = subject.mesh(int(frame))
target = region_mesh(gt, None, "ground truth")
n_shape = method.shape.shape[1]


def vertices(shape: torch.Tensor) -> np.ndarray:
    params = HeadParams(shape, method.expr[frame].detach(), method.pose[frame].detach(), torch.zeros(1, 3))
    with torch.no_grad():
        return (model_to_camera(avatar.head(params), method.translation[frame].detach()) * 1000.0)[0].double().numpy()


base = vertices(torch.zeros(1, n_shape))
# columns of the (linear up to the identity-dependent joints) map shape -> vertices, mm per unit
basis = np.stack([vertices(torch.eye(n_shape)[i:i + 1]) - base for i in range(n_shape)], axis=-1)


def similarity(verts: np.ndarray) -> np.ndarray:
    masks = {k: regions[k] for k in ("face", "head")}
    return align_to_head(Mesh(verts, faces, masks), gt)[1]


def fit(shape: np.ndarray, mask: np.ndarray, lam: float) -> np.ndarray:
    for _ in range(ITERATIONS):
        verts = base + basis @ shape
        matrix = similarity(verts)
        closest = target.nearest.on_surface(transform(verts[mask], matrix))[0]
        jacobian = np.einsum("ij,vjk->vik", matrix[:3, :3], basis[mask]).reshape(-1, n_shape)
        residual = (closest - transform(base[mask], matrix)).reshape(-1)
        shape = np.linalg.solve(jacobian.T @ jacobian + lam * np.eye(n_shape), jacobian.T @ residual)
    return shape


def fit_mesh() -> np.ndarray:
    """The fit's own mesh on the frame (mm): G's offsets at the frame's pose on top of its identity."""
    with torch.no_grad():
        return (avatar.geometry(method.train_params(frame)).verts_cam * 1000.0)[0].double().numpy()


def report(name: str, shape: np.ndarray, verts: np.ndarray | None = None) -> None:
    """One row: the identity ``shape``'s norm and the distances of ``verts`` (default: that identity
    alone) after the face-anchored similarity."""
    verts = base + basis @ shape if verts is None else verts
    error = point_surface_distances(transform(verts, similarity(verts)), target.vertices, target.faces)
    print(f"{name:34s} |shape| {np.linalg.norm(shape):5.2f}  head {error[head].mean():5.2f}  "
          f"without the back {error[rest].mean():5.2f}  back {error[back].mean():5.2f} mm", flush=True)


print(f"frame {int(frame)}: {head.sum()} head vertices, {back.sum()} of them on the back")
tracked = Sequence(subject, "train").tracking()["shape"].reshape(-1).astype(np.float64)
report("tracked shape", tracked)
fitted_shape = method.shape.detach().numpy().reshape(-1).astype(np.float64)
report("the fit's shape (offsets left out)", fitted_shape)
report("the fit's mesh (shape + offsets)", fitted_shape, fit_mesh())
for lam in (1e2, 1e3, 1e4):
    report(f"fitted without the back, lam {lam:g}", fit(tracked, rest, lam))
    report(f"fitted on the whole head, lam {lam:g}", fit(tracked, head, lam))
