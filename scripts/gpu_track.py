"""Unpack packed subjects on the GPU machine and track those without a tracking.npz, all at once.

Subjects come from `scripts/pack_subject.py pack` (JPEG, maybe at a lower resolution: the head-
model parameters do not depend on it); a `.tracking_partial.npz` in a packed folder is resumed. One
process per subject shares the GPU, since the tracker is bound by kernel launches, not by GPU work.
The tracked subjects stay in --work (tracking.npz in each); --summary gets a JSON summary.

    python3 scripts/gpu_track.py --packed .carry/real --work /tmp/work/real --summary $OUT/track.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _track(root: str, preset: str, device: str) -> None:
    from nha_bench.tracking import TrackerConfig, track_subject

    track_subject(root, device=device, config=TrackerConfig.preset(preset), progress=False)  # resumes a carried partial


def main() -> None:
    from pack_subject import unpack

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packed", type=Path, required=True, help="folder of packed subject folders")
    parser.add_argument("--work", type=Path, required=True, help="where the subjects are unpacked and tracked")
    parser.add_argument("--summary", type=Path, required=True)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--budget-s", type=float, default=420.0)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    subjects = sorted(p for p in args.packed.iterdir() if (p / "meta.json").is_file())
    for packed in subjects:
        unpack(packed, args.work / packed.name)
    todo = [p for p in subjects if not (args.work / p.name / "tracking.npz").is_file()]
    context = mp.get_context("spawn")
    began = time.perf_counter()
    jobs = {p.name: context.Process(target=_track, args=(str(args.work / p.name), args.preset, args.device)) for p in todo}
    for job in jobs.values():
        job.start()
    for job in jobs.values():
        job.join(timeout=max(1.0, args.budget_s - (time.perf_counter() - began)))
    summary = {"tracked_before": sorted({p.name for p in subjects} - set(jobs))}
    for name, job in jobs.items():
        if job.is_alive():
            job.terminate()
        summary[name] = {"finished": (args.work / name / "tracking.npz").is_file(), "exitcode": job.exitcode}
    summary["wall_s"] = round(time.perf_counter() - began, 1)
    summary["preset"] = args.preset
    args.summary.parent.mkdir(parents=True, exist_ok=True)
    args.summary.write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
