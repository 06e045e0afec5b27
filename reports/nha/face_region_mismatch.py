"""How much of `hausdorff_face` is the two face regions' different extents: the prediction's 'face'
(its output meshes' mask; before session 12 the head model's region, up to the hairline and over
the temples) against the ground truth's 'face' (inside the 68-landmark outline with the brows
raised 40 %, in front of the jaw angles). For
every sixth output mesh, after the metric's own similarity alignment, the mean distance of the
prediction's face samples to the ground-truth face triangles (the metric) and to the whole
ground-truth surface, and the share of samples more than 1 mm nearer to ground truth outside its face.
Run as: python reports/nha/face_region_mismatch.py SUBJECT_DIR OUTPUTS_DIR [OUTPUTS_DIR ...]"""
import sys
from pathlib import Path

import numpy as np
import trimesh

from nha_bench.mesh import Mesh
from nha_bench.metrics.geometry import DEFAULT_SAMPLES, align_to_head, point_surface_distances, region_mesh, transform

subject = Path(sys.argv[1])
for outputs in sys.argv[2:]:
    rows = []
    for path in sorted((Path(outputs) / "mesh").glob("*.npz"))[::6]:
        pred, truth = Mesh.load(path), Mesh.load(subject / "mesh" / path.name)
        _, similarity, _ = align_to_head(pred, truth)
        points, _ = trimesh.sample.sample_surface(region_mesh(pred, "face", str(path)), DEFAULT_SAMPLES, seed=0)
        points = transform(points, similarity)
        truth_face, truth_whole = region_mesh(truth, "face", "ground truth"), region_mesh(truth, None, "ground truth")
        to_face = point_surface_distances(points, truth_face.vertices, truth_face.faces)
        to_whole = point_surface_distances(points, truth_whole.vertices, truth_whole.faces)
        rows.append((to_face.mean(), to_whole.mean(), (to_face - to_whole > 1.0).mean()))
    face, whole, share = np.mean(rows, axis=0)
    print(f"{outputs}: to the GT face {face:.2f} mm, to the whole GT {whole:.2f} mm, "
          f"{share:.1%} of samples > 1 mm nearer outside the GT face ({len(rows)} frames)")
