"""Fitting time of NHA runs, from their checkpoint state and training log: per run folder the
device, steps, training and test-time-fit seconds, and the mean seconds per step of each stage,
checkpoint saves included (the log's elapsed time excludes probing), so the time of another step
count can be worked out stage by stage. Whether a fit had its GPU alone is not in the run folder.
Run as: python reports/nha/fit_times.py RUN_DIR [RUN_DIR ...]  (RUN_DIR holds checkpoint/ and train_log.jsonl)"""
import json
import sys
from pathlib import Path

import pandas as pd

from nha_bench.runner import read_train_log

rows = []
for run in map(Path, sys.argv[1:]):
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    log = pd.DataFrame(read_train_log(run))
    row = {"run": str(run), "device": state.get("device", "?"), "steps": state["step"],
           "train_s": round(state["elapsed_s"], 1), "test_fit_s": state.get("test_fit_s")}
    for stage, part in log.groupby("stage"):
        row[f"s/step stage {int(stage)}"] = round((part.elapsed_s.iloc[-1] - part.elapsed_s.iloc[0]) / max(len(part) - 1, 1), 4)
    rows.append(row)
print(pd.DataFrame(rows).to_string(index=False))
