"""Track the built-in tiny fixture (a copy) and score the tracked-head-model baseline on it.

    python reports/tracking/tiny.py [--preset tiny|full] [--device cpu|cuda] [--fixture DIR]
                                    [--tracking FILE]  (score a tracking.npz made elsewhere)

Writes reports/tracking/tiny_<preset>[_<device>].md: landmark error of the tracking (px, per split) and the
geometry/appearance protocol scores of the ``headmodel`` baseline on the val frames.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from nha_bench.datasets import Subject
from nha_bench.evaluation import evaluate_outputs
from nha_bench.method import Sequence
from nha_bench.methods.headmodel import TrackedHeadModel
from nha_bench.outputs import write_outputs
from nha_bench.tracking import TrackerConfig, track_subject

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "nha_bench" / "datasets" / "fixtures" / "tiny" / "subject_f1"


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="tiny", choices=["tiny", "full"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--fixture", type=Path, default=FIXTURE)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent)
    ap.add_argument("--tracking", type=Path, help="score this tracking.npz (e.g. from the GPU run) instead of tracking")
    args = ap.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / args.fixture.name
        shutil.copytree(args.fixture, root)
        (root / "tracking.npz").unlink(missing_ok=True)
        t0 = time.perf_counter()
        if args.tracking:
            shutil.copy(args.tracking, root / "tracking.npz")
        else:
            track_subject(root, device=args.device, config=TrackerConfig.preset(args.preset), progress=False)
        track_s = time.perf_counter() - t0
        subject = Subject(root)
        data = subject.tracking()
        err = data["landmark_error_px"]
        method = TrackedHeadModel()
        method.setup(Sequence(subject, "train"), args.preset, "cpu", 0)
        write_outputs(root / "outputs", method.render(Sequence(subject, "val")))
        results, skipped = evaluate_outputs(root / "outputs", subject, "val")
    lines = [
        f"# Tracker + `headmodel` baseline on the tiny fixture (preset `{args.preset}`)",
        "",
        f"Command: `python reports/tracking/tiny.py --preset {args.preset} --device {args.device}"
        + (f" --tracking {args.tracking.name}`" if args.tracking else "`") + "  ",
        f"Fixture: `{args.fixture.relative_to(ROOT) if args.fixture.is_relative_to(ROOT) else args.fixture}` "
        f"({subject.meta.n_frames} frames, {subject.meta.width}x{subject.meta.height} px); "
        + (f"tracking made elsewhere ({args.tracking.name})." if args.tracking
         else f"device: {args.device}; tracking wall time {track_s:.1f} s."),
        "",
        "Landmark reprojection error of the tracking (mean over the visible landmarks, px):",
        "",
        "| split | mean px | max px |",
        "|---|---|---|",
    ]
    for split in subject.meta.splits:
        e = err[subject.split(split)]
        lines.append(f"| {split} | {e.mean():.2f} | {e.max():.2f} |")
    lines += ["", "Baseline scores on the val split (metrics' own code, as the runner calls it):", "",
              "| metric | value | unit | paper FLAME (Table 1 mean) | extras |", "|---|---|---|---|---|"]
    for r in results:
        value = "n/a" if r.value is None else f"{r.value:.3f}"
        paper = TrackedHeadModel.paper_scores.get(r.spec.name, "")
        extra = ", ".join(f"{k} {v:.3f}" for k, v in r.extra.items())
        lines.append(f"| {r.spec.name} | {value} | {r.spec.unit} | {paper} | {extra} |")
    for s in skipped:
        lines.append(f"| {s.metric} | skipped: {s.reason} | | | |")
    lines += ["", f"Code: git {_git('rev-parse', '--short', 'HEAD')}"
              + (" with uncommitted changes in nha_bench/metrics" if _git("status", "--porcelain", "nha_bench/metrics") else "")
              + "."]
    lines += ["", f"Per-frame landmark error (px): {np.round(err, 2).tolist()}", ""]
    out = args.out / f"tiny_{args.preset}{'_' + args.device if args.device != 'cpu' else ''}.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
