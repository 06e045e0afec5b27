"""How much of a method's full-head distance is the face anchoring's orientation: the mean distance of
its val meshes (every fourth frame, 5000 samples) under the metric's face-anchored similarity and
under a similarity anchored on the whole prediction (diagnostic only: anchoring on everything can
hide missing volume), and the angle between the two alignments.
Run as: python reports/nha/alignment_anchor.py SUBJECT OUTPUTS_DIR [OUTPUTS_DIR ...]"""
import sys
from pathlib import Path

import numpy as np
import trimesh

from nha_bench.datasets.format import Subject
from nha_bench.metrics.geometry import align, align_to_head, alignment_extras, point_surface_distances, region_mesh, transform
from nha_bench.outputs import read_mesh

subject = Subject(sys.argv[1])
for outputs in sys.argv[2:]:
    face_anchored, whole_anchored, angles = [], [], []
    for index in subject.split("val")[::4]:
        pred, gt = read_mesh(Path(outputs), index), subject.mesh(index)
        target = region_mesh(gt, None, "ground truth")
        points, _ = trimesh.sample.sample_surface(region_mesh(pred, None, "prediction"), 5000, seed=0)
        _, by_face, _ = align_to_head(pred, gt)
        _, by_whole = align(points[::2], target.vertices, target.faces)
        face_anchored.append(point_surface_distances(transform(points, by_face), target.vertices, target.faces).mean())
        whole_anchored.append(point_surface_distances(transform(points, by_whole), target.vertices, target.faces).mean())
        angles.append(alignment_extras(points, by_face @ np.linalg.inv(by_whole))[1])
    print(f"{outputs}: face-anchored {np.mean(face_anchored):.2f} mm, whole-anchored {np.mean(whole_anchored):.2f} mm, "
          f"{np.mean(angles):.1f}° between the two alignments")
