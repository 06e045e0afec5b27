"""Track several packed subjects at once on the GPU machine and return their tracking.npz files.

Subjects come from `scripts/pack_subject.py pack` (JPEG, maybe at a lower resolution: the head-
model parameters do not depend on it); a `.tracking_partial.npz` in a packed folder is resumed. One
process per subject shares the GPU, since the tracker is bound by kernel launches, not by GPU work. Writes OUT/<name>_tracking.npz and OUT/summary.json.

    python3 scripts/gpu_track.py --packed .carry --out $OUT --preset tiny --budget-s 420
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import shutil
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
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/gpu_track"))
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--budget-s", type=float, default=420.0)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    subjects = sorted(p for p in args.packed.iterdir() if (p / "meta.json").is_file())
    for packed in subjects:
        unpack(packed, args.work / packed.name)
    context = mp.get_context("spawn")
    began = time.perf_counter()
    jobs = {p.name: context.Process(target=_track, args=(str(args.work / p.name), args.preset, args.device)) for p in subjects}
    for job in jobs.values():
        job.start()
    for job in jobs.values():
        job.join(timeout=max(1.0, args.budget_s - (time.perf_counter() - began)))
    summary = {}
    for name, job in jobs.items():
        if job.is_alive():
            job.terminate()
        done = args.work / name / "tracking.npz"
        partial = args.work / name / ".tracking_partial.npz"
        source = done if done.is_file() else partial if partial.is_file() else None
        if source is not None:
            shutil.copy2(source, args.out / f"{name}_{'tracking' if source == done else 'partial'}.npz")
        summary[name] = {"finished": source == done, "exitcode": job.exitcode}
    summary["wall_s"] = round(time.perf_counter() - began, 1)
    summary["preset"] = args.preset
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
