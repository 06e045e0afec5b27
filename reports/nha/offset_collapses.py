"""Divergence events of NHA's offset network in training logs: steps where the offset magnitude term
jumps above 10x, or the offset Laplacian above 3x, its median over the previous 100 steps (the
Laplacian catches events that stay off the magnitude term, e.g. with `offset_fixed_regions` masking
the heavily weighted face), and the offset Laplacian (a proxy for how much shape G holds) over the
50 steps before and the 50 steps after the event.
Run as: python reports/nha/offset_collapses.py RUN_DIR [RUN_DIR ...]  (RUN_DIR holds train_log.jsonl)"""
import sys
from pathlib import Path

import pandas as pd

from nha_bench.runner import read_train_log

JUMP = {"offset_norm": 10.0, "offset_lap": 3.0}  # term -> factor over its running median

for run in sys.argv[1:]:
    log = pd.DataFrame(read_train_log(Path(run)))
    log = log[log["stage"] != 2].reset_index(drop=True)  # G is frozen in stage 2
    baselines = {term: log[term].shift(1).rolling(100, min_periods=100).median() for term in JUMP}
    spikes = sorted({s for term, k in JUMP.items() for s in log.loc[log[term] > k * baselines[term], "step"]})
    events = [s for i, s in enumerate(spikes) if i == 0 or s - spikes[i - 1] > 50]  # first step of each burst
    print(f"{run}: {len(events)} event(s)")
    for step in events:
        before = log.loc[(log["step"] >= step - 50) & (log["step"] < step), "offset_lap"].mean()
        after = log.loc[(log["step"] > step + 10) & (log["step"] <= step + 60), "offset_lap"].mean()
        peak = log.loc[(log["step"] >= step) & (log["step"] <= step + 10), "offset_norm"].max()
        median = baselines["offset_norm"][log["step"] == step].item()
        print(f"  step {step}: offset_norm peak {peak:.3f} (median before {median:.4f}), "
              f"offset_lap {before:.4f} before -> {after:.4f} after")
