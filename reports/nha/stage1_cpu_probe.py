"""CPU proxy of NHA's stage 1 (geometry) on subject_f1: paper preset without the subdivision, at
128^2, one thread, logging the mean silhouette soft-xor of every 25 steps.
Run as: python reports/nha/stage1_cpu_probe.py SUBJECT_DIR OVERRIDES_JSON STEPS"""
import json
import sys
import time

import torch

from nha_bench.datasets.format import Subject
from nha_bench.method import Sequence
from nha_bench.methods.nha import Nha

torch.set_num_threads(1)
method = Nha(subdivide=False, train_size=128, iterations=100000, **json.loads(sys.argv[2]))
method.setup(Sequence(Subject(sys.argv[1]), "train"), "paper", "cpu", 0)
began, silhouette = time.time(), []
for step in range(int(sys.argv[3])):
    silhouette.append(method.train_iteration(step)["silhouette"])
    if step % 25 == 24:
        print(step + 1, round(time.time() - began, 1), "silhouette", round(sum(silhouette[-25:]) / 25, 4), flush=True)
