"""CPU probe: how far does NHA's stage 1 grow the back of the head under a given setting?

Stage 1 only (geometry), the paper preset without the subdivision at 128^2 plus OVERRIDES_JSON, one
thread, trained on the head-turn frames (the first quarter of the training split) for STEPS steps,
logging the mean silhouette soft-xor of every 25 steps, the largest offset-magnitude term in them
and G's largest FiLM frequency gain |g| (at the frames' mean pose; see offset_collapses.py). At
step 0, every 200 steps and at the end it prints G's neutral offsets behind the ears (along the
outward template normal, mm), how far the per-frame translations moved from the tracked ones,
and, on the most frontal and the two most turned frames, the face-anchored mean distance
prediction -> ground truth (`hausdorff_full`'s direction) and ground-truth skin of the head (its 'head' mask: skull and face, no hair or neck) ->
prediction (completeness: a missing back of the skull shows here).
Run as: python reports/nha/stage1_growth_probe.py SUBJECT STEPS [OVERRIDES_JSON]
"""
import json
import sys
import time

import numpy as np
import torch
import trimesh

from nha_bench.datasets.format import Subject
from nha_bench.mesh import Mesh
from nha_bench.method import Sequence
from nha_bench.methods.nha import Nha
from nha_bench.metrics.geometry import align_to_head, point_surface_distances, region_mesh, transform
from nha_bench.render import vertex_normals


def stage1_on_head_turn(subject_dir: str, overrides: dict) -> tuple[Subject, Sequence, Nha]:
    """The probe's fit, set up: stage 1 of the paper preset without subdivision at 128^2 plus
    ``overrides``, on the head-turn frames (the first quarter of the training split), one thread."""
    torch.set_num_threads(1)
    subject = Subject(subject_dir)
    n_turn = len(subject.split("train")) // 4
    sequence = Sequence(subject, "train", positions=tuple(range(n_turn)))
    method = Nha(subdivide=False, train_size=128, iterations=10**6, stage_fractions=(1.0, 0.0), test_iterations=0, **overrides)
    method.setup(sequence, "paper", "cpu", 0)
    return subject, sequence, method


def report(label: str) -> None:
    """Offsets behind the ears and the distances on the chosen frames."""
    with torch.no_grad():
        idx = torch.tensor(frames)
        params = method.train_params(idx)
        geometry = avatar.geometry(params)
        normal_mm = (avatar.neutral_offsets()[0] * outward).sum(-1)[back].numpy() * 1000.0
        verts = (geometry.verts_cam * 1000.0).numpy().astype(np.float64)
        moved_mm = (method.translation - tracked_translation).numpy() * 1000.0
    print(f"{label}: offsets behind the ears along the normal mean {normal_mm.mean():+.2f} mm, "
          f"p90 {np.percentile(normal_mm, 90):+.2f}, max {normal_mm.max():+.2f}; per-frame translation moved "
          f"{np.linalg.norm(moved_mm, axis=-1).mean():.2f} mm on average, depth {moved_mm[:, 2].mean():+.2f} mm", flush=True)
    faces = avatar.faces.numpy()
    regions = {k: v.numpy() for k, v in avatar.head.regions.items() if k in ("face", "head")}
    for position, v in zip(frames, verts):
        pred, gt = Mesh(v, faces, dict(regions)), subject.mesh(sequence.indices[position])
        _, similarity, _ = align_to_head(pred, gt)
        target = region_mesh(gt, None, "ground truth")
        pred_points, _ = trimesh.sample.sample_surface(region_mesh(pred, None, "prediction"), 3000, seed=0)
        gt_points, _ = trimesh.sample.sample_surface(region_mesh(gt, "head", "ground truth"), 3000, seed=0)
        aligned = transform(v, similarity)
        to_gt = point_surface_distances(transform(pred_points, similarity), target.vertices, target.faces).mean()
        to_pred = point_surface_distances(gt_points, aligned, faces).mean()
        print(f"  frame {sequence.indices[position]} (yaw {np.degrees(yaw[position]):+.0f} deg): "
              f"prediction -> GT {to_gt:.2f} mm, GT head skin -> prediction {to_pred:.2f} mm", flush=True)


def film_gain() -> float:
    """Largest |g| of G's FiLM frequency gains at the frames' mean joint pose."""
    with torch.no_grad():
        return float(avatar.offset_mlp.net.film(method.pose[:, 3:].mean(0))[0].abs().max())


if __name__ == "__main__":
    steps = int(sys.argv[2])
    subject, sequence, method = stage1_on_head_turn(sys.argv[1], json.loads(sys.argv[3]) if len(sys.argv) > 3 else {})
    avatar = method.avatar
    yaw = method.pose[:, 1].detach().numpy()  # y component of the global axis-angle rotation
    frames = [int(np.abs(yaw).argmin()), int(yaw.argmax()), int(yaw.argmin())]
    tracked_translation = method.translation.detach().clone()
    canonical = avatar.head.canonical_vertices
    outward = vertex_normals(canonical[None], avatar.faces)[0]
    back = canonical[:, 2] < canonical[avatar.head.regions["ears"], 2].min()  # z towards the viewer
    report("step 0")
    began, silhouette, offset_norm = time.time(), [], []
    for step in range(steps):
        terms = method.train_iteration(step)
        silhouette.append(terms["silhouette"])
        offset_norm.append(terms["offset_norm"])
        if step % 25 == 24:
            print(step + 1, round(time.time() - began, 1), "s, silhouette", round(sum(silhouette[-25:]) / 25, 4),
                  "offset_norm max", round(max(offset_norm[-25:]), 4), "film gain", round(film_gain(), 3), flush=True)
        if (step + 1) % 200 == 0 or step + 1 == steps:
            report(f"step {step + 1}")
