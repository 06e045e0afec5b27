"""The head model's vertex regions (face, scalp, ears, eyes, neck; the head part only), side and
front views of the canonical template, one colour per region.
Run as: python reports/nha/plot_head_regions.py MODEL OUT.png   (MODEL: ict, or flame with a FLAME file)"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from nha_bench.head import load_head_model

COLOURS = {"face": "tan", "scalp": "saddlebrown", "ears": "green", "eyes": "blue", "neck": "orange"}

model = load_head_model(sys.argv[1], n_shape=10)
vertices = model.canonical_vertices.cpu().numpy()
regions = {name: mask.cpu().numpy() for name, mask in model.regions.items()}
figure, axes = plt.subplots(1, 2, figsize=(10, 5))
for axis, (horizontal, vertical), title in zip(axes, ((2, 1), (0, 1)), ("side (z, y)", "front (x, y)")):
    for name, colour in COLOURS.items():
        chosen = regions[name] & regions["head"]
        axis.scatter(vertices[chosen, horizontal], vertices[chosen, vertical], s=0.3, c=colour, label=f"{name} ({chosen.sum()})")
    axis.set_aspect("equal")
    axis.set_title(f"{model.name}: {title}, metres")
axes[0].legend(markerscale=10, loc="lower left")
plt.savefig(sys.argv[2], dpi=80)
