"""Which parts of NHA's surface the training silhouettes constrain: per vertex of a fitted subject's
scored surface, the number of training frames in which it lies on the outline of the rendered head
(a vertex of the face seen at a pixel on the boundary of the rendered mask), against its mean
distance to the ground truth over the val frames (the mesh error map's values). Prints, per bucket
of outline frames, the share of the surface, its mean error and its share of the error (weighted by
vertex area, as the metric samples the surface by area), and how many of the outline frames fall in
the head turn that opens the training sequence.
Run as: python reports/nha/contour_coverage.py SUBJECT_DIR CHECKPOINT_DIR OUTPUTS_DIR [OVERRIDES_JSON]
(OVERRIDES_JSON: the options the checkpoint was fitted with, e.g. the old defaults', as for `--option`)."""
import json
import sys
from pathlib import Path

import numpy as np
import scipy.ndimage
import torch

from error_by_region import vertex_areas
from nha_bench.datasets.format import Subject
from nha_bench.datasets.synthetic.spec import TRAIN_TURN_FRACTION
from nha_bench.head.base import evaluation_surface
from nha_bench.mesh_error import mean_vertex_error
from nha_bench.methods.nha import Nha
from nha_bench.render import rasterize

BUCKETS = ((0, 0), (1, 4), (5, 19), (20, 10**9))
BATCH = 8

torch.set_num_threads(2)
subject = Subject(sys.argv[1])
method = Nha.fitted(subject, sys.argv[2], json.loads(sys.argv[4]) if len(sys.argv) > 4 else {})
faces = method.avatar.faces
n_frames = method.expr.shape[0]
n_turn = int(round(n_frames * TRAIN_TURN_FRACTION))
hits = np.zeros((2, method.avatar.head.n_vertices), dtype=np.int64)  # rows: head-turn frames, the rest
with torch.no_grad():
    for start in range(0, n_frames, BATCH):
        idx = torch.arange(start, min(start + BATCH, n_frames))
        params = method.train_params(idx)
        data = method.frames.select(idx)
        frags = rasterize(method.avatar.geometry(params).verts_cam, faces, data.K, data.height, data.width)
        for b, frame in enumerate(idx.tolist()):
            mask = frags.face_idx[b].numpy() >= 0
            outline = mask & ~scipy.ndimage.binary_erosion(mask)
            seen = np.unique(faces[frags.face_idx[b].numpy()[outline]].numpy())
            hits[0 if frame < n_turn else 1, seen] += 1

vertex_ids = evaluation_surface(method.avatar.head)[0]
vertices, mesh_faces, error = mean_vertex_error(Path(sys.argv[3]), subject)
area = vertex_areas(vertices, mesh_faces)
weighted = area * error
turn, rest = hits[0, vertex_ids], hits[1, vertex_ids]
total = turn + rest
print(f"{subject.root.name}: {len(vertex_ids)} scored vertices, {n_frames} training frames ({n_turn} in the head turn)")
print("outline frames | surface | mean error mm | share of the error | outline frames in the turn")
for low, high in BUCKETS:
    pick = (total >= low) & (total <= high)
    if not pick.any():
        continue
    in_turn = turn[pick].sum() / max(total[pick].sum(), 1)
    label = f"{low}" if low == high else f"{low}+" if high >= 10**9 else f"{low}-{high}"
    print(f"  {label:>6s} | {area[pick].sum() / area.sum():6.1%} | {weighted[pick].sum() / area[pick].sum():6.2f} | "
          f"{weighted[pick].sum() / weighted.sum():6.1%} | {in_turn:6.1%}")
far = error > 5.0
never, turn_only = far & (total == 0), far & (turn > 0) & (rest == 0)
print(f"surface over 5 mm: {area[far].sum() / area.sum():.1%}; of it never on the outline "
      f"{area[never].sum() / area[far].sum():.1%}, on it only in the head turn {area[turn_only].sum() / area[far].sum():.1%}")
