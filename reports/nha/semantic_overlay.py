"""NHA's soft semantic classes against the ground-truth parsing on four training frames of a fitted
subject: per row GT parsing | predicted class map | GT parsing with the predicted outline (yellow).
Colours: skin tan, eyes blue, ears green, hair brown, mouth red, clothes grey (real clips' parsing).
Classes drawn by `avatar.parsing_map` (where they pass 0.5, skin first and eyes last); black inside
the predicted head: no class with a parsing label passes 0.5 there (ICT's ear band, hidden surfaces).
Run as: python reports/nha/semantic_overlay.py SUBJECT CHECKPOINT_DIR OVERRIDES_JSON OUT.png"""
import json
import sys

import imageio.v3 as iio
import numpy as np
import torch

from nha_bench.datasets.format import LABEL_COLOURS, Subject
from nha_bench.methods.nha import Nha
from nha_bench.methods.nha.avatar import parsing_map

FRAMES = (0, 12, 37, 120)  # frontal start, both sides of the head turn, a later frame

torch.set_num_threads(2)
method = Nha.fitted(Subject(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]))
idx = torch.tensor(FRAMES)
params = method.train_params(idx)
data = method.frames.select(idx)
with torch.no_grad():
    soft = method.avatar.semantics(method.avatar.geometry(params).verts_cam, data.K, data.height, data.width, 1.0)
labels_of, soft = parsing_map(soft).numpy(), soft.numpy()
rows = []
for b in range(len(FRAMES)):
    covered = 1.0 - np.prod(1.0 - soft[b], axis=0) > 0.5
    truth = data.parsing[b].reshape(data.height, data.width).numpy().astype(int)
    outline = covered & ~(np.roll(covered, 1, 0) & np.roll(covered, -1, 0) & np.roll(covered, 1, 1) & np.roll(covered, -1, 1))
    overlay = LABEL_COLOURS[truth].copy()
    overlay[outline] = (255, 255, 0)
    rows.append(np.concatenate([LABEL_COLOURS[truth], LABEL_COLOURS[labels_of[b]], overlay], axis=1))
iio.imwrite(sys.argv[4], np.concatenate(rows, axis=0))
