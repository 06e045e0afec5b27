"""Contact sheets for eyeballing a subject: RGB | normal | parsing | landmarks, one row per frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from nha_bench.datasets.format import LABEL_COLOURS, Subject


def contact_sheet(subject_dir: str | Path, out: str | Path, n: int = 6, size: int = 128) -> Path:
    """Write a PNG with ``n`` frames spread over all splits (train first, then val)."""
    subject = Subject(subject_dir)
    frames = subject.split("train") + subject.split("val")
    picks = [frames[i] for i in np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int)]
    lmk = subject.landmarks()
    rows = []
    for index in picks:
        rgb = (subject.rgb(index) * 255).astype(np.uint8)
        normal = subject.normal(index)
        normal_img = np.where(np.linalg.norm(normal, axis=-1, keepdims=True) > 0, (normal * 0.5 + 0.5) * 255, 0)
        parsing = LABEL_COLOURS[subject.parsing(index)]
        tiles = [Image.fromarray(a.astype(np.uint8)).resize((size, size), Image.NEAREST)
                 for a in (rgb, normal_img, parsing, rgb)]
        draw = ImageDraw.Draw(tiles[3])
        scale = size / subject.meta.width
        for k, (x, y, vis) in enumerate(lmk[index]):
            colour = (0, 255, 0) if vis > 0.5 else (255, 0, 0)
            r = 1.5
            draw.ellipse((x * scale - r, y * scale - r, x * scale + r, y * scale + r), fill=colour)
        row = Image.new("RGB", (4 * size, size))
        for i, tile in enumerate(tiles):
            row.paste(tile, (i * size, 0))
        rows.append(row)
    sheet = Image.new("RGB", (4 * size, size * len(rows)))
    for i, row in enumerate(rows):
        sheet.paste(row, (0, i * size))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out
