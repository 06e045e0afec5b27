"""Face and full-head distances of saved head-model outputs (the baseline's and NHA's
`evaluation_surface`) under three choices of the prediction's scored `face`, which is also the
alignment's anchor: the head model's own `face` region (`ict`, before session 12), the ground
truth's landmark-outline rule alone (`rule`, without eyeballs), and the region inside the rule
(`both`, `head.base.scored_face_mask` since session 12). Every sixth output frame; the metric's
alignment and distances (`metrics.geometry`), 20000 samples. Per choice: the face distance (to the
ground truth's face triangles), the same samples' distance to the whole ground truth and the share
of them more than 1 mm nearer to it outside its face (what the face's extent adds), and the full
distance.
Run as: python reports/nha/face_mask_variants.py DATA_ROOT RUNS_DIR [SUBJECT ...]"""
import sys
from pathlib import Path

import numpy as np
import trimesh

from nha_bench.head import evaluation_surface, load_head_model
from nha_bench.head.base import scored_face_mask
from nha_bench.head.edits import nha_topology
from nha_bench.head.face_outline import landmark_outline_mask
from nha_bench.mesh import Mesh
from nha_bench.metrics.geometry import DEFAULT_SAMPLES, align_to_head, point_surface_distances, region_mesh, transform


def face_masks(model) -> dict[str, np.ndarray]:
    """The three candidate face masks on the model's evaluation surface."""
    kept, _, _ = evaluation_surface(model)
    landmarks = model.landmarks(model.canonical_vertices[None])[0].detach().numpy()
    rule = landmark_outline_mask(model.canonical_vertices.numpy(), landmarks) & ~model.regions["eyes"].numpy()
    return {"ict": model.regions["face"].numpy()[kept], "rule": rule[kept], "both": scored_face_mask(model)[kept]}


def distances(points: np.ndarray, surface: trimesh.Trimesh) -> np.ndarray:
    return point_surface_distances(points, surface.vertices, surface.faces)


data_root, runs = Path(sys.argv[1]), Path(sys.argv[2])
ict = load_head_model("ict")
masks = {"headmodel": face_masks(ict), "nha": face_masks(nha_topology(ict))}
for subject in sys.argv[3:] or ("subject_f1", "subject_f2", "subject_m1", "subject_m2"):
    for method, candidates in masks.items():
        scores: dict[str, list[tuple[float, float, float, float]]] = {}
        for path in sorted((runs / method / "synthetic" / subject / "outputs" / "mesh").glob("*.npz"))[::6]:
            pred, truth = Mesh.load(path), Mesh.load(data_root / subject / "mesh" / path.name)
            truth_face, truth_whole = region_mesh(truth, "face", "ground truth"), region_mesh(truth, None, "ground truth")
            whole = trimesh.sample.sample_surface(region_mesh(pred, None, str(path)), DEFAULT_SAMPLES, seed=0)[0]
            for name, face in candidates.items():
                candidate = Mesh(pred.vertices, pred.faces, {"face": face, "head": pred.vertex_masks["head"]})
                _, similarity, _ = align_to_head(candidate, truth)
                face_points = trimesh.sample.sample_surface(region_mesh(candidate, "face", str(path)), DEFAULT_SAMPLES, seed=0)[0]
                face_points = transform(face_points, similarity)
                to_face, to_whole = distances(face_points, truth_face), distances(face_points, truth_whole)
                full = distances(transform(whole, similarity), truth_whole).mean()
                scores.setdefault(name, []).append((to_face.mean(), to_whole.mean(), (to_face - to_whole > 1.0).mean(), full))
        cells = "  ".join(
            f"{name}: face {face:.2f} (to the whole GT {whole:.2f}, {nearer:.1%} nearer outside its face) full {full:.2f}"
            for name, (face, whole, nearer, full) in ((name, np.mean(v, axis=0)) for name, v in scores.items())
        )
        print(f"{subject} {method} ({len(scores['ict'])} frames)  {cells}", flush=True)
