"""GPU check of the tracker (run on the device machine): a synthetic subject rendered from known
head-model parameters, tracked with a preset, compared with the truth; and the tiny fixture tracked
with the same preset (its tracking.npz is copied to --out for scoring elsewhere).

    PYTHONPATH=. python3 reports/tracking/gpu_synthetic.py --out $OUT [--frames 60 --size 512 --preset full]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from nha_bench.head import HeadParams, load_head_model
from nha_bench.render import project
from nha_bench.tracking import TrackerConfig, head_vertices_camera, track_subject
from nha_bench.tracking.synthetic import make_synthetic_subject

FIXTURE = Path(__file__).resolve().parents[2] / "nha_bench" / "datasets" / "fixtures" / "tiny" / "subject_f1"


def compare(path: Path, truth: dict, device: str) -> dict:
    """Landmark (recomputed), rotation, image-position and depth errors of a tracking vs the truth."""
    with np.load(path) as d:
        t = {k: d[k] for k in d.files}
    n = len(t["expr"])
    model = load_head_model(str(t["model"])).to(device)
    params = HeadParams.from_numpy_dict(
        {"shape": np.repeat(t["shape"][None], n, 0), **{k: t[k] for k in ("expr", "pose", "translation")}}, device=device)
    with torch.no_grad():
        px = project(model.landmarks(head_vertices_camera(model, params)), truth["K"].to(device)).cpu()
    lmk = (px - truth["landmarks"]).norm(dim=-1).mean(-1).numpy()
    gt = truth["params"]
    rot = np.degrees(np.abs(t["pose"][:, :3] - gt.pose[:, :3].numpy())).max(1)
    depth = np.abs(t["translation"][:, 2] / gt.translation[:, 2].numpy() - 1)
    return {"landmark_px_mean": float(lmk.mean()), "landmark_px_max": float(lmk.max()),
            "rotation_deg_mean": float(rot.mean()), "rotation_deg_max": float(rot.max()),
            "depth_rel_err_mean": float(depth.mean()), "depth_rel_err_max": float(depth.max())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--preset", default="full")
    ap.add_argument("--work", type=Path, default=Path("/tmp/tracking_gpu"))
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    shutil.rmtree(args.work, ignore_errors=True)
    report = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "preset": args.preset}
    t0 = time.perf_counter()
    subject, truth = make_synthetic_subject(args.work / "synthetic", n_frames=args.frames, size=args.size, with_meshes=False)
    report["synthetic"] = {"frames": args.frames, "size": args.size, "make_s": round(time.perf_counter() - t0, 1)}
    for preset in (args.preset, "tiny"):
        t0 = time.perf_counter()
        path = track_subject(subject.root, device=device, config=TrackerConfig.preset(preset), force=True, progress=False)
        report["synthetic"][preset] = {"track_s": round(time.perf_counter() - t0, 1), **compare(path, truth, device)}
        print(json.dumps(report), flush=True)
    fixture = args.work / FIXTURE.name
    shutil.copytree(FIXTURE, fixture)
    t0 = time.perf_counter()
    path = track_subject(fixture, device=device, config=TrackerConfig.preset(args.preset), force=True, progress=False)
    report["fixture"] = {"track_s": round(time.perf_counter() - t0, 1),
                         "landmark_px": np.load(path)["landmark_error_px"].round(3).tolist()}
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, args.out / f"fixture_tracking_{args.preset}.npz")
    (args.out / "gpu_synthetic.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
