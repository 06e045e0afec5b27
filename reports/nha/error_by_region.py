"""Where a method's full-head Hausdorff distance comes from: per head-model region of the predicted
mesh (the scored face first, then the rest of the model's face region and the others), its share of
the surface area, its mean distance to the ground truth (mm, after the metric's
alignment, averaged over the val frames) and its contribution to the area-weighted mean (share x
distance; the contributions add up to about `hausdorff_full`, which samples the surface by area).

Works for NHA's meshes and the tracked head-model baseline's (both export the head model's
`evaluation_surface`): the regions are those of whichever of the tracked model, its NHA edit
without subdivision, or NHA's subdivided topology gives the mesh's vertex count.
Run as: python reports/nha/error_by_region.py SUBJECT_DIR OUTPUTS_DIR [OUTPUTS_DIR ...]
"""
import sys
from pathlib import Path

import numpy as np
import trimesh

from nha_bench.datasets.format import Subject
from nha_bench.head import evaluation_surface, load_head_model
from nha_bench.head.base import scored_face_mask
from nha_bench.head.edits import close_mouth, nha_topology, remove_lower_neck
from nha_bench.mesh_error import mean_vertex_error
from nha_bench.methods.nha.head_builder import tracked_model_name

REGIONS = ("scored_face", "face", "eyes", "ears", "scalp", "neck")  # "face": the rest of the model's face region


def region_masks_by_size(subject: Subject) -> dict[int, dict[str, np.ndarray]]:
    """Vertex count of each candidate topology's evaluation surface -> its region masks."""
    base = load_head_model(tracked_model_name(subject), n_shape=10)
    by_size = {}
    for model in (base, close_mouth(remove_lower_neck(base)), nha_topology(base)):
        kept, _, _ = evaluation_surface(model)
        by_size[len(kept)] = {k: v.cpu().numpy()[kept] for k, v in model.regions.items()}
        by_size[len(kept)]["scored_face"] = scored_face_mask(model)[kept]
    return by_size


def region_masks(by_size: dict[int, dict[str, np.ndarray]], n_vertices: int) -> dict[str, np.ndarray]:
    """The region masks of the topology with ``n_vertices`` vertices."""
    if n_vertices not in by_size:
        raise SystemExit(f"no head-model topology with {n_vertices} vertices (known: {sorted(by_size)})")
    return by_size[n_vertices]


def vertex_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Each vertex's share of the surface (a third of each adjacent triangle's area): the weight
    that makes a mean over vertices sample the surface by area, as `hausdorff_full` does."""
    area = trimesh.Trimesh(vertices, faces, process=False).area_faces
    return np.bincount(faces.ravel(), np.repeat(area / 3, 3), minlength=len(vertices))


def disjoint_regions(masks: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """REGIONS in order, each without the vertices of the ones before it, then "other" (the rest)."""
    parts, rest = [], np.ones(len(next(iter(masks.values()))), bool)
    for name in REGIONS:
        mask = masks[name] & rest
        rest &= ~mask
        parts.append((name, mask))
    return parts + [("other", rest)]


def main() -> None:
    subject = Subject(Path(sys.argv[1]))
    by_size = region_masks_by_size(subject)
    print("region: area share %, mean distance mm, contribution mm")
    for outputs in map(Path, sys.argv[2:]):
        vertices, faces, error = mean_vertex_error(outputs, subject)
        vertex_area = vertex_areas(vertices, faces)
        total = vertex_area.sum()
        print(f"{outputs}: area-weighted mean {np.sum(vertex_area * error) / total:.2f} mm")
        for name, mask in disjoint_regions(region_masks(by_size, len(vertices))):
            share = vertex_area[mask].sum() / total
            mean = np.sum(vertex_area[mask] * error[mask]) / max(vertex_area[mask].sum(), 1e-12)
            print(f"  {name:11s} {100 * share:5.1f} %  {mean:6.2f} mm  {share * mean:5.2f} mm")


if __name__ == "__main__":
    main()
