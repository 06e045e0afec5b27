"""CPU proxy of NHA's stage 1 (geometry): paper preset without the subdivision, at 128^2, one
thread, logging every 25 steps the mean silhouette, semantic and landmark terms and the identity's
norm; with OUT_DIR it then saves the checkpoint (for `identity_back_fit.py` with the same overrides
plus `{"subdivide": false, "train_size": 128, "iterations": 100000}`).
Run as: python reports/nha/stage1_cpu_probe.py SUBJECT_DIR OVERRIDES_JSON STEPS [OUT_DIR]"""
import json
import sys
import time
from pathlib import Path

import torch

from nha_bench.datasets.format import Subject
from nha_bench.method import Sequence
from nha_bench.methods.nha import Nha

TERMS = ("silhouette", "semantic", "lmk")
torch.set_num_threads(1)
method = Nha(subdivide=False, train_size=128, iterations=100000, **json.loads(sys.argv[2]))
method.setup(Sequence(Subject(sys.argv[1]), "train"), "paper", "cpu", 0)
began, rows = time.time(), []
for step in range(int(sys.argv[3])):
    rows.append(method.train_iteration(step))
    if step % 25 == 24:
        means = " ".join(f"{k} {sum(r[k] for r in rows[-25:]) / 25:.4f}" for k in TERMS)
        print(step + 1, round(time.time() - began, 1), means, f"|shape| {float(method.shape.detach().norm()):.2f}", flush=True)
if len(sys.argv) > 4:
    method.save(Path(sys.argv[4]))
