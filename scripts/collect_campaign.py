"""Summarise NHA run folders for reports/: each run's final checkpoint state (steps, fitting
seconds, test-fit seconds, device), its quality-vs-time probe curve [step, seconds, l1] and per
stage the seconds at which it ended and the median seconds of one step.

    python scripts/collect_campaign.py runs/camp reports/nha/campaign_DATE.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from nha_bench.runner import read_train_log


def collect(runs_dir: Path) -> dict[str, dict]:
    """{"dataset/subject": state + probe_l1} for every ``nha/<dataset>/<subject>`` run folder."""
    summary = {}
    for state_path in sorted(runs_dir.glob("nha/*/*/checkpoint/state.json")):
        run = state_path.parents[1]
        entry = json.loads(state_path.read_text())
        rows = read_train_log(run)
        entry["probe_l1"] = [[r["step"] + 1, round(r["elapsed_s"], 1), round(r["probe_l1"], 4)] for r in rows if "probe_l1" in r]
        entry["stages"] = _stage_times(rows)
        summary[f"{run.parent.name}/{run.name}"] = entry
    return summary


def _stage_times(rows: list[dict]) -> dict[str, dict[str, float]]:
    """{stage: {"ends_s": elapsed seconds at its last step, "median_step_s": median step time}}."""
    times = {}
    for stage in sorted({r["stage"] for r in rows}):
        steps = [r for r in rows if r["stage"] == stage]
        durations = np.diff([r["elapsed_s"] for r in steps])
        times[str(int(stage))] = {"ends_s": round(steps[-1]["elapsed_s"], 1),
                                  "median_step_s": round(float(np.median(durations)), 3) if len(durations) else None}
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs_dir", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    args.out.write_text(json.dumps(collect(args.runs_dir), indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
