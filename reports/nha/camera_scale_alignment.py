"""hausdorff_full of scored meshes under the protocol's face-anchored similarity alignment and,
for comparison only, under a uniform scale about the camera centre (the one transform a monocular
fit cannot observe), chosen on the whole prediction or on its face; every 6th val frame.
Run as: python reports/nha/camera_scale_alignment.py SUBJECT RUN_DIR (RUN_DIR holds outputs/mesh)"""
import sys
from pathlib import Path

import numpy as np
import trimesh
from scipy.optimize import minimize_scalar

from nha_bench.datasets.format import Subject
from nha_bench.mesh import Mesh
from nha_bench.metrics.geometry import align_to_head, point_surface_distances, region_mesh, transform

subject, run = Subject(sys.argv[1]), Path(sys.argv[2])
scores: dict[str, list[float]] = {"face_similarity": [], "camera_scale_full": [], "camera_scale_face": []}
for index in subject.split("val")[::6]:
    saved = np.load(run / "outputs" / "mesh" / f"{index:06d}.npz")
    masks = {key[5:]: saved[key] for key in saved.files if key.startswith("mask_")}
    pred, gt = Mesh(saved["vertices"].astype(np.float64), saved["faces"], masks), subject.mesh(index)
    target = region_mesh(gt, None, "ground truth")
    points, _ = trimesh.sample.sample_surface(region_mesh(pred, None, "prediction"), 3000, seed=0)
    face_points, _ = trimesh.sample.sample_surface(region_mesh(pred, "face", "prediction"), 1500, seed=0)
    _, similarity, _ = align_to_head(pred, gt)
    scores["face_similarity"].append(point_surface_distances(transform(points, similarity), target.vertices, target.faces).mean())
    for key, sample in (("camera_scale_full", points), ("camera_scale_face", face_points)):
        best = minimize_scalar(lambda s: point_surface_distances(sample * s, target.vertices, target.faces).mean(),
                               bounds=(0.6, 1.2), method="bounded", options={"xatol": 1e-3})
        scores[key].append(point_surface_distances(points * best.x, target.vertices, target.faces).mean())
print(run, {key: round(float(np.mean(values)), 2) for key, values in scores.items()})
