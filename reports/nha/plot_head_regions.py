"""The head model's vertex regions (face, scalp, ears, eyes, neck, and the `pinna` NHA's options may
derive from the ears; the head part only), side and
front views of the canonical template, one colour per region, and in a third panel the face the
geometry metrics score and align on (`head.base.scored_face_mask`) with the model's landmarks.
Run as: python reports/nha/plot_head_regions.py MODEL OUT.png   (MODEL: ict, or flame with a FLAME file)"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from nha_bench.head import load_head_model
from nha_bench.head.base import scored_face_mask
from nha_bench.head.regions import pinna_mask

COLOURS = {"face": "tan", "scalp": "saddlebrown", "ears": "green", "pinna": "red", "eyes": "blue", "neck": "orange"}

model = load_head_model(sys.argv[1], n_shape=10)
vertices = model.canonical_vertices.cpu().numpy()
regions = {name: mask.cpu().numpy() for name, mask in model.regions.items()}
regions["pinna"] = pinna_mask(vertices, model.faces.cpu().numpy(), regions["ears"])
figure, axes = plt.subplots(1, 3, figsize=(15, 5))
for axis, (horizontal, vertical), title in zip(axes, ((2, 1), (0, 1)), ("side (z, y)", "front (x, y)")):
    for name, colour in COLOURS.items():
        chosen = regions[name] & regions["head"]
        axis.scatter(vertices[chosen, horizontal], vertices[chosen, vertical], s=0.3, c=colour, label=f"{name} ({chosen.sum()})")
    axis.set_aspect("equal")
    axis.set_title(f"{model.name}: {title}, metres")
axes[0].legend(markerscale=10, loc="lower left")
scored = scored_face_mask(model) & regions["head"]
landmarks = model.landmarks(model.canonical_vertices[None])[0].detach().cpu().numpy()
axes[2].scatter(vertices[regions["head"], 0], vertices[regions["head"], 1], s=0.3, c="0.85")
axes[2].scatter(vertices[scored, 0], vertices[scored, 1], s=0.3, c="C3", label=f"scored face ({scored.sum()})")
axes[2].scatter(landmarks[:, 0], landmarks[:, 1], s=6, c="k", label="iBUG-68 landmarks")
axes[2].set_aspect("equal")
axes[2].set_title(f"{model.name}: front, the face the metrics score")
axes[2].legend(markerscale=3, loc="lower left")
plt.savefig(sys.argv[2], dpi=80)
