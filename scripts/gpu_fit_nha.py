"""Fit NHA on one subject on a GPU machine and bring back a compact result (<= 8 files).

Three steps, one subcommand each:
  compact   (here)    copy a subject into a small folder to carry: all train frames, an evenly
                      spaced subset of val frames (meshes only for those), e.g. under data/nha_gpu/
  fit       (device)  setup + train with the runner's loop semantics, a quality-vs-time curve
                      (masked l1 on a few val frames with tracked parameters), test-time fit of
                      expression/pose, render the val frames; writes to --out:
                      summary.json, train_log.jsonl, renders.npz, meshes.npz, nha.pt, sheet.png
  evaluate  (here)    score renders.npz/meshes.npz with the project's metrics (evaluation.py)

Device call (the `run` tool), carrying data/nha_gpu (pytorch-msssim wheel + compact subject):
  python3 -m pip install -q --no-index --no-deps --target /tmp/site data/nha_gpu/whl/*.whl &&
  PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1 python3 scripts/gpu_fit_nha.py fit \
      --subject data/nha_gpu/subject_f1 --out $OUT --iterations 1500 --budget-s 300
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nha_bench.datasets.format import Subject, encode_normal  # noqa: E402
from nha_bench.method import Renders, Sequence  # noqa: E402


def compact(src: Path, dst: Path, n_val: int) -> None:
    """Copy ``src`` to ``dst`` with its train frames and ``n_val`` evenly spaced val frames,
    renumbered 0..n-1 (per-frame arrays sliced alike; meshes only for the val frames)."""
    subject = Subject(src)
    meta = json.loads((src / "meta.json").read_text())
    val = subject.split("val")
    keep_val = [val[int(i)] for i in np.linspace(0, len(val) - 1, min(n_val, len(val)))]
    train = subject.split("train")
    order = train + keep_val
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for field in ("rgb", "mask", "parsing", "normal", "mesh"):
        if field not in meta["fields"]:
            continue
        (dst / field).mkdir()
        for new, old in enumerate(order):
            if field == "mesh" and old not in keep_val:
                continue
            target = dst / field / f"{new:06d}{subject.path(field, old).suffix}"
            shutil.copy2(subject.path(field, old), target)
    np.save(dst / "landmarks.npy", subject.landmarks()[order])
    for name in ("tracking", "cameras"):
        if (src / f"{name}.npz").is_file():
            data = dict(np.load(src / f"{name}.npz"))
            n = meta["n_frames"]
            np.savez(dst / f"{name}.npz", **{k: (v[order] if v.ndim and len(v) == n and k != "shape" else v) for k, v in data.items()})
    meta["n_frames"] = len(order)
    meta["splits"] = {"train": list(range(len(train))), "val": list(range(len(train), len(order)))}
    meta.setdefault("extra", {})["compacted_from"] = {"root": str(src), "frames": order}
    (dst / "meta.json").write_text(json.dumps(meta, indent=1))
    size = sum(f.stat().st_size for f in dst.rglob("*") if f.is_file())
    print(f"compact subject: {len(train)} train + {len(keep_val)} val frames, {size / 2**20:.1f} MiB -> {dst}")


def _masked_l1(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> float:
    return float(np.abs(pred - gt)[mask].mean())


def fit(args: argparse.Namespace) -> None:
    import torch

    from nha_bench.methods.nha import Nha

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(args.seed)
    subject = Subject(args.subject)
    train, val = Sequence(subject, "train"), Sequence(subject, "val")
    overrides = {k: v for k, v in (("iterations", args.iterations), ("train_size", args.train_size),
                                   ("batch_size", args.batch_size), ("test_iterations", args.test_iterations)) if v}
    overrides.update({key: json.loads(value) for key, value in (item.split("=", 1) for item in args.set)})
    method = Nha(**overrides)
    t0 = time.perf_counter()
    method.setup(train, args.preset, device, args.seed)
    setup_s = time.perf_counter() - t0
    print(f"setup {setup_s:.1f}s on {device}; notes: {method.notes}", flush=True)
    probe_pos = list(range(min(2, len(val))))
    probe_gt, probe_mask = val.load("rgb", probe_pos), val.load("mask", probe_pos)
    subject.meta.splits["probe"] = [val.indices[p] for p in probe_pos]  # in memory only
    probe = Sequence(subject, "probe")
    curve, log_lines = [], []
    total = method.num_iterations()
    began = time.perf_counter()
    stage_time = {1: 0.0, 2: 0.0, 3: 0.0}
    step = 0
    for step in range(total):
        t = time.perf_counter()
        losses = method.train_iteration(step)
        if device == "cuda":
            torch.cuda.synchronize()
        stage_time[int(losses["stage"])] += time.perf_counter() - t
        elapsed = time.perf_counter() - began
        log_lines.append(json.dumps({"step": step, "elapsed_s": round(elapsed, 3), **losses}))
        last = step + 1 == total
        if (step + 1) % args.eval_every == 0 or last or elapsed > args.budget_s:
            renders = method.render(probe)
            curve.append({"step": step + 1, "elapsed_s": round(elapsed, 2), "stage": losses["stage"],
                          "val_l1_tracked_params": _masked_l1(renders.rgb, probe_gt, probe_mask)})
            print(json.dumps(curve[-1]), flush=True)
        if elapsed > args.budget_s:
            print(f"time budget {args.budget_s}s reached at step {step + 1}/{total}", flush=True)
            break
    fit_s = time.perf_counter() - began
    (out / "train_log.jsonl").write_text("\n".join(log_lines) + "\n")
    method.save(out)
    t = time.perf_counter()
    if args.test_fit:
        method.fit_frame_params(val)
    test_fit_s = time.perf_counter() - t
    t = time.perf_counter()
    renders = method.render(val)
    render_s = time.perf_counter() - t
    method.save(out)  # with the test-time parameters
    gt, mask = val.load("rgb"), val.load("mask")
    np.savez_compressed(
        out / "renders.npz", indices=np.asarray(renders.indices),
        rgb=np.clip(np.round(renders.rgb * 255), 0, 255).astype(np.uint8),
        normal=np.stack([encode_normal(n, np.linalg.norm(n, axis=-1) > 0.5) for n in renders.normal]),
    )
    meshes = renders.meshes or []
    np.savez_compressed(
        out / "meshes.npz", vertices=np.stack([m.vertices for m in meshes]).astype(np.float32),
        faces=meshes[0].faces.astype(np.int32),
        **{f"mask_{k}": v for k, v in meshes[0].vertex_masks.items()},
    )
    import imageio.v3 as iio

    rows = [np.concatenate([gt[i], renders.rgb[i], (renders.normal[i] + 1) / 2 * (np.abs(renders.normal[i]).sum(-1, keepdims=True) > 0)], 1)
            for i in range(min(4, len(gt)))]
    iio.imwrite(out / "sheet.png", (np.concatenate(rows, 0) * 255).astype(np.uint8))
    summary = {
        "subject": str(args.subject), "preset": args.preset, "overrides": overrides, "device": (
            torch.cuda.get_device_name() if device == "cuda" else "cpu"),
        "config": method.config(), "steps_done": step + 1, "steps_planned": total,
        "setup_s": round(setup_s, 2), "fit_s": round(fit_s, 2), "stage_s": {k: round(v, 2) for k, v in stage_time.items()},
        "test_fit_s": round(test_fit_s, 2), "render_s": round(render_s, 2),
        "val_frames": len(val), "val_l1_masked_after_test_fit": _masked_l1(renders.rgb, gt, mask),
        "curve": curve,
        "max_gpu_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k not in ("config", "curve")}, indent=1))


def evaluate(args: argparse.Namespace) -> None:
    """Score the fetched renders with the project's metrics (as the runner would)."""
    from nha_bench.evaluation import evaluate_outputs
    from nha_bench.mesh import Mesh
    from nha_bench.outputs import write_outputs
    from nha_bench.datasets.format import decode_normal

    res = Path(args.results)
    subject = Subject(args.subject)
    r, m = np.load(res / "renders.npz"), np.load(res / "meshes.npz")
    masks = {k[5:]: m[k] for k in m.files if k.startswith("mask_")}
    renders = Renders(
        indices=[int(i) for i in r["indices"]], rgb=r["rgb"].astype(np.float32) / 255.0,
        normal=np.stack([decode_normal(n) for n in r["normal"]]),
        meshes=[Mesh(v.astype(np.float64), m["faces"].astype(np.int64), masks) for v in m["vertices"]],
    )
    outputs = Path(args.work) / "outputs"
    if outputs.exists():
        shutil.rmtree(outputs)
    write_outputs(outputs, renders)
    results, skipped = evaluate_outputs(outputs, subject, "val")
    scores = {x.spec.name: x.value for x in results}
    for s in skipped:
        print(f"skipped {s.metric}: {s.reason}")
    print(json.dumps(scores, indent=1))
    (Path(args.work) / "scores.json").write_text(json.dumps(scores, indent=1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compact")
    c.add_argument("src", type=Path)
    c.add_argument("dst", type=Path)
    c.add_argument("--val-frames", type=int, default=12)
    f = sub.add_parser("fit")
    f.add_argument("--subject", type=Path, required=True)
    f.add_argument("--out", type=Path, required=True)
    f.add_argument("--preset", default="paper")
    f.add_argument("--iterations", type=int, default=0)
    f.add_argument("--train-size", type=int, default=0)
    f.add_argument("--batch-size", type=int, default=0)
    f.add_argument("--test-iterations", type=int, default=0)
    f.add_argument("--no-test-fit", dest="test_fit", action="store_false")
    f.add_argument("--budget-s", type=float, default=300.0, help="stop training after this many seconds")
    f.add_argument("--eval-every", type=int, default=250)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                   help="override an NhaConfig field, e.g. --set w_offset_lap=10")
    e = sub.add_parser("evaluate")
    e.add_argument("--subject", type=Path, required=True)
    e.add_argument("--results", type=Path, required=True)
    e.add_argument("--work", type=Path, required=True)
    args = p.parse_args()
    if args.cmd == "compact":
        compact(args.src, args.dst, args.val_frames)
    elif args.cmd == "fit":
        fit(args)
    else:
        evaluate(args)


if __name__ == "__main__":
    main()
