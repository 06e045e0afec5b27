"""Benchmark the differentiable renderer: forward + backward time and peak memory.

One iteration = vertex normals, rasterize, interpolate the normals (3 channels), a loss on the
image and the depth, loss.backward() to the vertices, on a head-like mesh of ~30k faces.

    python benchmarks/bench_render.py --device cpu --sizes 256 512 --batch 8
    python benchmarks/bench_render.py --device cuda --backends triton torch --sizes 256 512 --batch 8

Results are merged into reports/benchmarks/render.json (keyed by device, backend, size, batch) and
reports/benchmarks/render.md is rewritten from it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nha_bench.render import interpolate, rasterize, soft_silhouette, vertex_normals  # noqa: E402


def head_mesh(target_faces: int = 30000) -> tuple[np.ndarray, np.ndarray]:
    """A head-sized (mm) deformed UV sphere with a nose and noise, about ``target_faces`` faces."""
    import trimesh

    n = int(round((target_faces / 4) ** 0.5))  # uv_sphere(count=[n, n]) has ~4 n^2 faces
    m = trimesh.creation.uv_sphere(radius=1.0, count=[n, n])
    v = np.asarray(m.vertices, dtype=np.float64)
    g = np.random.default_rng(0)
    bump = 0.25 * np.exp(-((v[:, 0] ** 2 + (v[:, 1] + 0.1) ** 2) / 0.02)) * (v[:, 2] < 0)  # nose towards -z
    v = v * (1.0 + bump[:, None] + 0.01 * g.standard_normal((len(v), 1)))
    v *= np.array([80.0, 100.0, 90.0])  # mm
    v[:, 2] += 500.0  # in front of the camera, nose (-z side) facing it
    return v.astype(np.float32), np.asarray(m.faces, dtype=np.int64)


def git_commit() -> str:
    if os.environ.get("BENCH_COMMIT"):  # the device machine's copy of the tree has no .git
        return os.environ["BENCH_COMMIT"]
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True, stderr=subprocess.DEVNULL).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def run_case(verts, faces, size: int, batch: int, backend: str, device: str, iters: int, warmup: int, prof: bool = False) -> dict:
    """Time ``iters`` forward+backward iterations; return the median and peak memory.

    backend "soft" times soft_silhouette (sigma 1 px, 4 face labels) instead of the rasterizer;
    "soft_depth" the same with its depth test (1 mm, hidden faces to a 5th label).
    """
    f = 900.0 * size / 512  # head fills ~60% of the image height
    K = torch.tensor([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]], device=device)
    g = torch.Generator(device="cpu").manual_seed(0)
    base = torch.tensor(verts, device=device)
    # each batch item a slightly different pose: small random rotation about y and translation
    ang = (torch.rand(batch, generator=g) - 0.5) * 0.6
    c, s = torch.cos(ang), torch.sin(ang)
    R = torch.zeros(batch, 3, 3)
    R[:, 0, 0], R[:, 0, 2], R[:, 1, 1], R[:, 2, 0], R[:, 2, 2] = c, s, 1, -s, c
    centre = torch.tensor([0.0, 0.0, 500.0], device=device)
    vb = ((base - centre) @ R.to(device).transpose(1, 2) + centre).contiguous()
    vb = vb + (torch.rand(batch, 1, 3, generator=g).to(device) - 0.5) * 10
    fa = torch.tensor(faces, device=device)

    # 4 contiguous regions (quadrants of the face centroids), like semantic head regions
    cen = torch.tensor(verts)[torch.tensor(faces)].mean(1)
    labels = ((cen[:, 0] > 0).long() + 2 * (cen[:, 1] > 0).long()).to(device)

    def step():
        v = vb.clone().requires_grad_(True)
        if backend in ("soft", "soft_depth"):
            depth = {"depth_tolerance": 1.0, "hidden_label": 4} if backend == "soft_depth" else {}
            sil = soft_silhouette(v, fa, K, size, size, sigma=1.0, face_labels=labels, n_labels=4 + bool(depth), **depth)
            sil.square().mean().backward()
            return rasterize(v.detach(), fa, K, size, size), v.grad
        n = vertex_normals(v, fa)
        fr = rasterize(v, fa, K, size, size, backend=backend)
        img = interpolate(n, fa, fr)
        loss = img.square().mean() + 1e-3 * fr.depth.mean()
        loss.backward()
        return fr, v.grad

    for _ in range(warmup):
        step()
    sync(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fr, grad = step()
        sync(device)
        times.append(time.perf_counter() - t)
    if prof:
        from torch.profiler import ProfilerActivity, profile

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
        with profile(activities=acts) as p:
            step()
            sync(device)
        sort = "self_cuda_time_total" if device == "cuda" else "self_cpu_time_total"
        print(f"profile {backend} {size}^2 batch {batch}\n" + p.key_averages().table(sort_by=sort, row_limit=25, max_name_column_width=40))
    ms = 1000 * statistics.median(times)
    out = {
        "device": device,
        "device_name": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "backend": backend,
        "size": size,
        "batch": batch,
        "faces": int(len(faces)),
        "iters": iters,
        "ms_per_iter_median": round(ms, 3),
        "ms_per_iter_min": round(1000 * min(times), 3),
        "images_per_s": round(batch / (ms / 1000), 1),
        "coverage": round(float(fr.mask.float().mean()), 4),
        "grad_finite": bool(torch.isfinite(grad).all()),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
    }
    if device == "cuda":
        out["peak_mem_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    else:
        out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def agreement(verts, faces, size: int, batch: int, device: str) -> dict:
    """Compare the Triton and PyTorch visibility on the benchmark scene (CUDA only)."""
    f = 900.0 * size / 512
    K = torch.tensor([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]], device=device)
    v = torch.tensor(verts, device=device).expand(batch, -1, -1).contiguous()
    v = v + torch.linspace(-20, 20, batch, device=device)[:, None, None] * torch.tensor([1.0, 0, 0], device=device)
    fa = torch.tensor(faces, device=device)
    a = rasterize(v, fa, K, size, size, backend="torch")
    b = rasterize(v, fa, K, size, size, backend="triton")
    both = a.mask & b.mask
    return {
        "size": size,
        "face_idx_equal_fraction": float((a.face_idx == b.face_idx).float().mean()),
        "max_depth_diff_mm": float((a.depth - b.depth)[both].abs().max()),
    }


def write_md(results: list[dict], agree: list[dict], path: Path, meta: dict) -> None:
    lines = [
        "# Renderer benchmark",
        "",
        "One iteration: `vertex_normals` + `rasterize` + `interpolate` (3-channel normals) + loss +",
        "`backward()` to the vertices; backend `soft` times `soft_silhouette` (sigma 1 px, 4 quadrant labels) +",
        "`backward()` instead, `soft_depth` the same with its depth test (1 mm; hidden faces to a 5th label).",
        "Mesh: head-like deformed UV sphere (mm, 500 mm from the",
        "camera), face count per row. Median over the timed iterations after warm-up.",
        "",
        "Commands:",
        "",
    ]
    lines += [f"    {c}" for c in meta.get("commands", [])]
    lines += [
        "",
        "| device | backend | faces | size | batch | ms/iter (median) | images/s | peak memory (MB) | coverage | load avg / cores | commit |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        mem = r.get("peak_mem_mb", r.get("peak_rss_mb"))
        kind = "GPU alloc" if "peak_mem_mb" in r else "process RSS"
        lines.append(
            f"| {r['device_name']} ({r['device']}, {r['threads']} threads) | {r['backend']} | {r['faces']} | {r['size']}^2 | {r['batch']} | "
            f"{r['ms_per_iter_median']} | {r['images_per_s']} | {mem} ({kind}) |  {r['coverage']} | {r.get('load_avg_1min')} / {r.get('cpu_count')} | {r.get('commit', '?')} |"
        )
    if meta.get("notes"):
        lines += ["", "Notes:", ""] + [f"- {n}" for n in meta["notes"]]
    if agree:
        lines += ["", "Triton vs PyTorch visibility on the benchmark scene (CUDA):", ""]
        lines += [f"- {a['size']}^2: face index equal on {a['face_idx_equal_fraction']:.6f} of pixels, max depth difference {a['max_depth_diff_mm']:.3g} mm" for a in agree]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--backends", nargs="+", default=["auto"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[256, 512])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--faces", type=int, default=30000, help="approximate face count of the test mesh")
    ap.add_argument("--iters", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--profile", action="store_true", help="print a torch.profiler kernel table for each case")
    ap.add_argument("--json", type=Path, default=ROOT / "reports/benchmarks/render.json")
    ap.add_argument("--md", type=Path, default=ROOT / "reports/benchmarks/render.md")
    args = ap.parse_args()
    iters = args.iters or (50 if args.device == "cuda" else 5)
    if args.threads:
        torch.set_num_threads(args.threads)
    verts, faces = head_mesh(args.faces)
    old = json.loads(args.json.read_text()) if args.json.exists() else {"results": [], "agreement": [], "commands": []}
    cmd = "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:])
    new = []
    for size in args.sizes:
        for backend in args.backends:
            r = run_case(verts, faces, size, args.batch, backend, args.device, iters, warmup=3 if args.device == "cuda" else 1, prof=args.profile)
            r["commit"] = git_commit()
            r["torch"] = torch.__version__
            print(json.dumps(r), flush=True)
            new.append(r)
    agree = []
    if args.device == "cuda":
        agree = [agreement(verts, faces, s, args.batch, "cuda") for s in args.sizes]
        for a in agree:
            print(json.dumps(a), flush=True)
    key = lambda r: (r["device_name"], r["backend"], r["size"], r["batch"], r["faces"])
    keys = {key(r) for r in new}
    results = [r for r in old["results"] if key(r) not in keys] + new
    commands = [c for c in old.get("commands", []) if c != cmd] + [cmd]
    data = {"results": results, "agreement": agree or old.get("agreement", []), "commands": commands, "notes": old.get("notes", [])}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=1) + "\n")
    write_md(results, data["agreement"], args.md, data)
    print(f"{'device':>8} {'backend':>8} {'size':>5} {'ms/iter':>9} {'img/s':>8} {'mem MB':>8}")
    for r in new:
        print(f"{r['device']:>8} {r['backend']:>8} {r['size']:>5} {r['ms_per_iter_median']:>9} {r['images_per_s']:>8} {r.get('peak_mem_mb', r.get('peak_rss_mb')):>8}")


if __name__ == "__main__":
    main()
