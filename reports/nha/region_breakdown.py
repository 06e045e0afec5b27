"""Where the full-head Hausdorff distance comes from: the prediction's surface samples (as the
metric draws and aligns them), grouped by the ground-truth part they are closest to (face, rest of
the head skin, neck skin, hair) -> share of the samples and their mean distance (mm).
Run as: python reports/nha/region_breakdown.py RUNS_DIR DATA_ROOT SUBJECT [SUBJECT ...]"""
import sys
from pathlib import Path

import igl
import numpy as np
import trimesh

from nha_bench.datasets.format import Subject
from nha_bench.metrics.geometry import DEFAULT_SAMPLES, align_to_head, transform
from nha_bench.outputs import read_mesh

PARTS = ("face", "head", "neck", "hair")
runs, root = Path(sys.argv[1]), Path(sys.argv[2])
print("| subject | method | full | " + " | ".join(f"closest to GT {p}" for p in PARTS) + " |")
print("|---|---|---|" + "---|" * len(PARTS))
for name in sys.argv[3:]:
    subject = Subject(root / name)
    for method in ("headmodel", "nha"):
        dists, labels = [], []
        for index in subject.split("val"):
            pred, target = read_mesh(runs / method / "synthetic" / name / "outputs", index), subject.mesh(index)
            _, matrix, _ = align_to_head(pred, target)
            points, _ = trimesh.sample.sample_surface(trimesh.Trimesh(pred.vertices, pred.faces, process=False),
                                                      DEFAULT_SAMPLES, seed=0)
            squared, triangle, _ = igl.point_mesh_squared_distance(
                transform(points, matrix), np.asarray(target.vertices, np.float64), np.asarray(target.faces, np.int64))
            m = {k: target.vertex_masks[k][target.faces[triangle, 0]] for k in ("face", "head", "hair")}
            label = np.select([m["hair"], m["face"], m["head"]], [3, 0, 1], default=2)
            dists.append(np.sqrt(squared))
            labels.append(label)
        d, lab = np.concatenate(dists), np.concatenate(labels)
        cells = [f"{d[lab == k].mean():.2f} ({100 * (lab == k).mean():.0f} %)" if (lab == k).any() else "-"
                 for k in range(len(PARTS))]
        print(f"| {name} | {method} | {d.mean():.2f} | " + " | ".join(cells) + " |")
