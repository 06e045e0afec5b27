"""Contact sheets of a prepared subject: frame | mask | parsing (colour-coded) | landmarks."""

from __future__ import annotations

from pathlib import Path

import cv2
import imageio.v3 as iio
import numpy as np

from nha_bench.datasets.format import Subject

# one colour per label of LABELS: bg black, skin, eyes, ears, hair, mouth interior, clothes
PALETTE = np.array(
    [[0, 0, 0], [240, 190, 150], [40, 120, 255], [255, 60, 200], [120, 70, 20], [220, 20, 40], [60, 180, 75]], np.uint8
)


def _landmark_overlay(rgb: np.ndarray, lm: np.ndarray) -> np.ndarray:
    out = rgb.copy()
    r = max(1, rgb.shape[0] // 200)
    groups = [(0, 17), (17, 22), (22, 27), (27, 31), (31, 36), (36, 42), (42, 48), (48, 60), (60, 68)]
    for a, b in groups:  # iBUG groups as polylines, so a wrong index map shows as a crossed line
        pts = np.round(lm[a:b, :2] * 16).astype(np.int32)
        closed = a >= 36
        cv2.polylines(out, [pts], closed, (0, 255, 0), 1, cv2.LINE_AA, shift=4)
    for k, (x, y) in enumerate(lm[:, :2]):
        cv2.circle(out, (int(round(x * 16)), int(round(y * 16))), r * 16, (255, 0, 0) if k != 30 else (255, 255, 0), -1, cv2.LINE_AA, shift=4)
    return out


def contact_sheet(root: str | Path, n_rows: int = 4, tile: int = 192) -> np.ndarray:
    """An (n_rows * tile, 4 * tile, 3) uint8 sheet of evenly spaced frames of the subject at ``root``."""
    subject = Subject(root)
    lms = subject.landmarks()
    frames = np.linspace(0, subject.meta.n_frames - 1, n_rows).round().astype(int)
    rows = []
    for i in frames:
        rgb = (subject.rgb(i) * 255).round().astype(np.uint8)
        mask = np.repeat(subject.mask(i)[..., None].astype(np.uint8) * 255, 3, axis=2)
        parsing = PALETTE[subject.parsing(i)]
        tiles = [rgb, mask, (0.35 * rgb + 0.65 * parsing).astype(np.uint8), _landmark_overlay(rgb, lms[i])]
        row = np.concatenate([cv2.resize(t, (tile, tile), interpolation=cv2.INTER_AREA) for t in tiles], axis=1)
        cv2.putText(row, f"frame {i}", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1, cv2.LINE_AA)
        rows.append(row)
    return np.concatenate(rows, axis=0)


def write_contact_sheet(root: str | Path, path: str | Path, n_rows: int = 4, tile: int = 192) -> Path:
    """Write the contact sheet of ``root`` as a PNG at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, contact_sheet(root, n_rows, tile))
    return path
