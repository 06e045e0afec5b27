"""hausdorff_full-style mean distance (whole prediction -> whole ground truth) of an NHA fit on its
own training frames (fitted per-frame parameters), under the protocol's face-anchored similarity
and under the best uniform scale about the camera centre; prints that scale per frame. A prediction
that is a scaled copy of the ground truth (the monocular depth ambiguity) would get one scale for
every view and ~0 mm.
Run as: python reports/nha/train_frame_alignment.py SUBJECT CHECKPOINT_DIR FRAME[,FRAME...]"""
import sys

import numpy as np
import torch
import trimesh
from scipy.optimize import minimize_scalar

from nha_bench.datasets.format import Subject
from nha_bench.head.base import HeadParams
from nha_bench.mesh import Mesh
from nha_bench.method import Sequence
from nha_bench.methods.nha import Nha
from nha_bench.metrics.geometry import align_to_head, point_surface_distances, region_mesh, transform

torch.set_num_threads(2)
subject = Subject(sys.argv[1])
method = Nha()
method.setup(Sequence(subject, "train"), "paper", "cpu", 0)
method.load(sys.argv[2])
frames = [int(f) for f in sys.argv[3].split(",")]
idx = torch.tensor(frames)
params = HeadParams(method.shape.expand(len(idx), -1), method.expr[idx], method.pose[idx], method.translation[idx])
with torch.no_grad():
    verts = (method.avatar.geometry(params).verts_cam * 1000.0).numpy().astype(np.float64)
faces = method.avatar.faces.numpy()
regions = {k: v.numpy() for k, v in method.avatar.head.regions.items() if k in ("face", "head")}
for frame, v in zip(frames, verts):
    pred, gt = Mesh(v, faces, dict(regions)), subject.mesh(frame)
    target = region_mesh(gt, None, "ground truth")
    points, _ = trimesh.sample.sample_surface(region_mesh(pred, None, "prediction"), 3000, seed=0)
    _, similarity, _ = align_to_head(pred, gt)
    face_anchored = point_surface_distances(transform(points, similarity), target.vertices, target.faces).mean()
    best = minimize_scalar(lambda s: point_surface_distances(points * s, target.vertices, target.faces).mean(),
                           bounds=(0.6, 1.2), method="bounded", options={"xatol": 1e-3})
    print(f"frame {frame}: face-anchored similarity {face_anchored:.2f} mm, camera-centred scale {best.fun:.2f} mm (scale {best.x:.3f})")
