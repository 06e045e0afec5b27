"""Cross-sections of the ground-truth mesh (skin + hair, black) and NHA's prediction after the
hausdorff_full similarity alignment (red) for one val frame: sagittal through the face centre and
axial 50 mm above it. Run as:
python reports/nha/cross_sections.py SUBJECT OUT.png CHECKPOINT_DIR OVERRIDES_JSON [CHECKPOINT_DIR OVERRIDES_JSON ...]"""
import json
import sys

import matplotlib
import torch
import trimesh

from nha_bench.datasets.format import Subject
from nha_bench.method import Sequence
from nha_bench.methods.nha import Nha
from nha_bench.metrics.geometry import align_to_head, transform

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

torch.set_num_threads(2)
subject, out = Subject(sys.argv[1]), sys.argv[2]
runs = list(zip(sys.argv[3::2], sys.argv[4::2]))
fig, axes = plt.subplots(2, len(runs), figsize=(5 * len(runs), 10), squeeze=False)
for column, (checkpoint, options) in enumerate(runs):
    method = Nha.fitted(subject, checkpoint, json.loads(options))
    test = Sequence(subject, "val", (0,))
    pred, gt = method.render(test).meshes[0], subject.mesh(test.indices[0])
    _, similarity, _ = align_to_head(pred, gt)
    meshes = ((trimesh.Trimesh(gt.vertices, gt.faces, process=False), "k"),
              (trimesh.Trimesh(transform(pred.vertices, similarity), pred.faces, process=False), "r"))
    centre = gt.vertices[gt.vertex_masks["face"]].mean(axis=0)
    planes = (("sagittal (z, y)", [1.0, 0.0, 0.0], centre, (2, 1)),
              ("axial 50 mm above the face centre (x, z)", [0.0, 1.0, 0.0], centre + [0.0, -50.0, 0.0], (0, 2)))
    for row, (title, normal, origin, (a, b)) in enumerate(planes):
        ax = axes[row, column]
        for mesh, colour in meshes:
            for seg in trimesh.intersections.mesh_plane(mesh, normal, origin):
                ax.plot(seg[:, a], seg[:, b], colour, lw=0.8)
        ax.set_aspect("equal")
        ax.set_title(f"{checkpoint.rstrip('/').split('/')[-5] if checkpoint.count('/') > 4 else checkpoint}\n{title}", fontsize=8)
        if row == 0:
            ax.invert_yaxis()
fig.tight_layout()
fig.savefig(out, dpi=70)
