"""hausdorff_full-style mean distance (whole prediction -> whole ground truth) of an NHA fit on its
own training frames (fitted per-frame parameters, or with --tracked the tracker's expression, pose and
translation), under the protocol's face-anchored similarity (anchored, as before session 12, on the
head model's own `face` region rather than the scored face) and under the best uniform scale about
the camera centre; prints that scale per frame, the ground truth's head yaw (+ towards the image's
+x), the rotation the face-anchored similarity applies (yaw, pitch, roll in degrees about the
camera's axes; a rotation by +a about the camera's y axis lowers the head yaw by a) and so how many
degrees further than the ground truth the prediction is turned (negative: turned less). A prediction
that is a scaled copy of the ground truth (the monocular depth ambiguity) would get one scale for
every view and ~0 mm.
Run as: python reports/nha/train_frame_alignment.py SUBJECT CHECKPOINT_DIR FRAME[,FRAME...] [OVERRIDES_JSON] [--tracked]
(OVERRIDES_JSON: the options the checkpoint was fitted with, e.g. the old defaults', as for `--option`)."""
import json
import sys

import numpy as np
import torch
import trimesh
from scipy.optimize import minimize_scalar
from scipy.spatial.transform import Rotation

from nha_bench.datasets.format import Subject
from nha_bench.head.base import HeadParams
from nha_bench.mesh import Mesh
from nha_bench.method import Sequence
from nha_bench.methods.nha import Nha
from nha_bench.metrics.geometry import align_to_head, matrix_scale, point_surface_distances, region_mesh, transform

torch.set_num_threads(2)
arguments = [a for a in sys.argv[1:] if a != "--tracked"]
subject = Subject(arguments[0])
method = Nha.fitted(subject, arguments[1], json.loads(arguments[3]) if len(arguments) > 3 else {})
frames = [int(f) for f in arguments[2].split(",")]
idx = torch.tensor(frames)
if "--tracked" in sys.argv:
    tracked = Sequence(subject, "train").tracking()
    expr, pose, translation = (torch.as_tensor(tracked[k][frames], dtype=torch.float32) for k in ("expr", "pose", "translation"))
else:
    expr, pose, translation = method.expr[idx], method.pose[idx], method.translation[idx]
params = HeadParams(method.shape.expand(len(idx), -1), expr, pose, translation)
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
    scale = matrix_scale(similarity)
    yaw, pitch, roll = Rotation.from_matrix(similarity[:3, :3] / scale).as_euler("YXZ", degrees=True)
    forward = gt.vertices[gt.vertex_masks["face"]].mean(axis=0) - gt.vertices[gt.vertex_masks["head"]].mean(axis=0)
    head_yaw = np.degrees(np.arctan2(forward[0], -forward[2]))
    print(f"frame {frame}: face-anchored similarity {face_anchored:.2f} mm, camera-centred scale {best.fun:.2f} mm "
          f"(scale {best.x:.3f}); head yaw {head_yaw:.1f}, alignment rotates yaw {yaw:.2f} pitch {pitch:.2f} roll {roll:.2f}, "
          f"prediction turned {yaw * np.sign(head_yaw):+.2f}° further")
