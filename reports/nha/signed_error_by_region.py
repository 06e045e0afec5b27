"""Inside or outside the ground truth: per head-model region of the predicted mesh, its mean
distance to the ground-truth surface split by side (outside: the prediction lies on the side the
closest ground-truth triangle's normal points to). Every sixth val frame, the metric's alignment,
plain vertex means over each region's vertices (regions as `error_by_region.py` finds them, not
made disjoint); outside + inside = mean.
Run as: python reports/nha/signed_error_by_region.py SUBJECT_DIR OUTPUTS_DIR [OUTPUTS_DIR ...]
"""
import sys
from pathlib import Path

import numpy as np
import trimesh

from error_by_region import region_masks, region_masks_by_size
from nha_bench.datasets.format import Subject
from nha_bench.metrics.geometry import HausdorffFull, align_to_head, region_mesh, transform
from nha_bench.outputs import read_mesh

REGIONS = ("face", "scalp", "neck", "ears", "eyes")


def main() -> None:
    subject = Subject(Path(sys.argv[1]))
    by_size = region_masks_by_size(subject)
    for outputs in map(Path, sys.argv[2:]):
        sums = {name: [] for name in REGIONS}
        for index in subject.split("val")[::6]:
            pred, target = read_mesh(outputs, index), subject.mesh(index)
            _, matrix, _ = align_to_head(pred, target)
            moved = transform(np.asarray(pred.vertices, np.float64), matrix)
            surface = region_mesh(target, HausdorffFull.target_region, "ground truth")
            closest, distance, triangle = trimesh.proximity.closest_point(surface, moved)
            outside = np.einsum("ij,ij->i", moved - closest, surface.face_normals[triangle]) > 0
            masks = region_masks(by_size, len(moved))
            for name in REGIONS:
                d, out = distance[masks[name]], outside[masks[name]]
                sums[name].append((d.mean(), (d * out).mean(), (d * ~out).mean()))
        print(outputs)
        for name, frames in sums.items():
            mean, out, inside = np.mean(frames, axis=0)
            print(f"  {name:6s} mean {mean:.2f}  outside {out:.2f}  inside {inside:.2f}")


if __name__ == "__main__":
    main()
