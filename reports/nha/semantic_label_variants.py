"""How well NHA's semantic classes match the parsing under three ways of drawing them, on one fitted
subject's training frames (the fit's geometry, pose and expression; only the class drawing changes):
`every` (every front-facing face counts, the head model's `ears` region is the ear class: the
defaults until session 23), `depthN` (`semantic_depth_tolerance_mm` N: only faces at most N mm behind the visible
surface count) and `depthN+pinna` (with `semantic_ear_region="pinna"`). Session 17's `visible`
variants (a pixel mask, since replaced by the depth test) are in its output file.
Prints per class the predicted and parsed pixels and their soft xor (pixels per frame, the semantic
term's mismatch), and writes a sheet of three training frames: parsing | `every` | `depthN+pinna`
(classes drawn by `avatar.parsing_map`: where they pass 0.5, eyes and ears over skin and hair).
Optional 5th argument: the tolerance N in mm (default 2).
Run as: python reports/nha/semantic_label_variants.py SUBJECT CHECKPOINT_DIR OVERRIDES_JSON OUT.png"""
import json
import sys
from dataclasses import replace

import imageio.v3 as iio
import numpy as np
import torch

from nha_bench.datasets.format import LABEL_COLOURS, Subject
from nha_bench.methods.nha import Nha
from nha_bench.methods.nha.avatar import N_SEMANTIC_XOR, PARSING_OF_SEMANTIC, SEMANTIC, NhaAvatar, parsing_map
from nha_bench.methods.nha.config import INERT_WHEN

TOLERANCE_MM = float(sys.argv[5]) if len(sys.argv) > 5 else 2.0
# session 18's variants, from the semantics before session 23 (no depth test, ICT's ears, no exemption)
EVERY = {k: INERT_WHEN[k] for k in ("semantic_depth_tolerance_mm", "semantic_ear_region", "semantic_depth_exempt_classes")}
VARIANTS = {
    "every": EVERY,
    f"depth{TOLERANCE_MM:g}": {**EVERY, "semantic_depth_tolerance_mm": TOLERANCE_MM},
    f"depth{TOLERANCE_MM:g}+pinna": {**EVERY, "semantic_depth_tolerance_mm": TOLERANCE_MM, "semantic_ear_region": "pinna"},
}
SHEET_FRAMES = (0, 12, 37)  # frontal start and both sides of the head turn

torch.set_num_threads(2)
method = Nha.fitted(Subject(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]))
n = method.expr.shape[0]
frames = sorted(set(range(0, 50, 3)) | set(range(50, n, 15)) | set(SHEET_FRAMES))  # the head turn densely
idx = torch.tensor(frames)
params, data = method.train_params(idx), method.frames.select(idx)
with torch.no_grad():
    verts = method.avatar.geometry(params).verts_cam
parsing = data.parsing.reshape(len(frames), data.height, data.width)
sheet_rows = [frames.index(f) for f in SHEET_FRAMES]
columns = [LABEL_COLOURS[parsing[sheet_rows].numpy().astype(int)]]
print(f"{sys.argv[1]}: {len(frames)} training frames; pixels per frame (predicted / parsed / soft xor)")
for name, options in VARIANTS.items():
    avatar = NhaAvatar(method.avatar.head, replace(method.cfg, **options))
    avatar.offset_mlp.load_state_dict(method.avatar.offset_mlp.state_dict())
    with torch.no_grad():
        soft = avatar.semantics(verts, data.K, data.height, data.width, 1.0)
    cells = []
    for k in range(N_SEMANTIC_XOR):
        pred, truth = soft[:, k], (parsing == PARSING_OF_SEMANTIC[k]).float()
        xor = (pred + truth - 2 * pred * truth).sum() / len(frames)
        cells.append(f"{SEMANTIC[k]} {pred.sum() / len(frames):.0f} / {truth.sum() / len(frames):.0f} / {xor:.0f}")
    print(f"  {name:14s} " + " | ".join(cells))
    if name != f"depth{TOLERANCE_MM:g}":
        columns.append(LABEL_COLOURS[parsing_map(soft[sheet_rows]).numpy()])
iio.imwrite(sys.argv[4], np.concatenate([np.concatenate([c[r] for c in columns], axis=1) for r in range(len(SHEET_FRAMES))]))
