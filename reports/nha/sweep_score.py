"""Provenance of the sweep table in reports/nha/README.md (GPU runs 6-11): scores an NHA checkpoint
with the tracked parameters of 4 val frames (no test-time fit) and writes a contact sheet.
Run as: python reports/nha/sweep_score.py SUBJECT CHECKPOINT_DIR SHEET.png [OVERRIDES_JSON]."""
import sys, json, numpy as np, imageio.v3 as iio
from pathlib import Path
from nha_bench.datasets.format import Subject
from nha_bench.method import Sequence
from nha_bench.methods.nha import Nha
from nha_bench.metrics.geometry import HausdorffFull, HausdorffFace
from nha_bench.metrics.base import MeshPair
subj = Subject(sys.argv[1]); ck = Path(sys.argv[2]); out = sys.argv[3]
opts = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
m = Nha.fitted(subj, ck, opts)
test = Sequence(subj, "val", (0, 8, 16, 23))
r = m.render(test)
gt = test.load("rgb")
rows = [np.concatenate([gt[i], r.rgb[i], (r.normal[i] + 1) / 2 * (np.abs(r.normal[i]).sum(-1, keepdims=True) > 0), (test.load("normal")[i]+1)/2], 1) for i in range(len(gt))]
iio.imwrite(out, (np.clip(np.concatenate(rows, 0), 0, 1) * 255).astype(np.uint8))
pairs = [MeshPair(mesh, subj.mesh(i)) for mesh, i in zip(r.meshes, test.indices)]
for M in (HausdorffFull(5000), HausdorffFace(5000)):
    s = M.score(pairs)
    print(M.spec.name, s.values.mean().round(2), {k: v.mean().round(3) for k, v in s.extras.items()})
