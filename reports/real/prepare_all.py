"""Prepare the four shared clips (/work/shared/videos) into DATA_ROOT/<clip> and write contact
sheets + summary.json here. Usage: python reports/real/prepare_all.py [DATA_ROOT] [--res 512] [--force]"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from nha_bench.datasets import Subject, validate_subject
from nha_bench.datasets.video import prepare
from nha_bench.datasets.video.contact import write_contact_sheet

HERE = Path(__file__).parent
CLIPS = ("d3", "d6", "d9", "d14")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", nargs="?", default="/work/data/real")
    parser.add_argument("--videos", default="/work/shared/videos")
    parser.add_argument("--res", type=int, default=512)
    parser.add_argument("--force", action="store_true", help="re-prepare subjects that exist")
    args = parser.parse_args()
    summary_path = HERE / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    for clip in CLIPS:
        out = Path(args.root) / clip
        start = time.perf_counter()
        prepare(Path(args.videos) / f"{clip}.mp4", out, res=args.res, track=False, force=args.force)
        wall = time.perf_counter() - start
        subject = Subject(out)
        problems = validate_subject(out)
        meta = subject.meta
        summary[clip] = {
            "res": meta.width, "n_frames": meta.n_frames, "fps": meta.fps,
            "train": len(meta.splits["train"]), "val": len(meta.splits["val"]),
            "split_notes": meta.extra["split_notes"], "warnings": meta.extra["warnings"],
            "crop": meta.extra["crop"], "intrinsics": meta.intrinsics,
            "timing_s": meta.extra["timing_s"], "wall_s_this_call": round(wall, 1),
            "frames_per_s": round(meta.n_frames / sum(meta.extra["timing_s"].values()), 2),
            "validate_problems": len(problems),
        }
        write_contact_sheet(out, HERE / f"contact_{clip}.png", n_rows=4, tile=192)
        summary_path.write_text(json.dumps(summary, indent=1))
        print(clip, summary[clip], flush=True)


if __name__ == "__main__":
    main()
