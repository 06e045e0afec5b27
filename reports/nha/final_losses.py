"""The training energies at the end of NHA fits: per run folder, each term's mean over the last 100
steps of its train_log.jsonl (stage 3), to see which terms a configuration leaves higher.
Run as: python reports/nha/final_losses.py RUN_DIR [RUN_DIR ...]  (RUN_DIR holds train_log.jsonl)"""
import sys
from pathlib import Path

import pandas as pd

from nha_bench.runner import read_train_log

TERMS = ["silhouette", "semantic", "rgb", "perc", "offset_lap", "offset_norm", "probe_l1"]

rows = {}
for run in map(Path, sys.argv[1:]):
    log = pd.DataFrame(read_train_log(run)).tail(100)
    rows[str(run)] = log[[t for t in TERMS if t in log]].mean()
print(pd.DataFrame(rows).T.to_string(float_format="{:.4g}".format))
