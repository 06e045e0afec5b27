"""What `ignore_hanging_hair` leaves out of the silhouette and semantic terms: training frames of
one or more subjects (one row each, frames evenly spread, the head turn included) with the
left-out hair pixels in red, the rest of the hair in yellow and the jaw-contour landmarks in cyan.
Run as: python reports/nha/hanging_hair_overlay.py OUT.png SUBJECT_DIR [SUBJECT_DIR ...]"""
import sys

import imageio.v3 as iio
import numpy as np
import torch

from nha_bench.datasets.format import Subject
from nha_bench.method import Sequence
from nha_bench.methods.nha.data import HAIR_LABEL, JAW_CONTOUR, load_frames

FRAMES = 6
SIZE = 256


def row(subject_dir: str) -> np.ndarray:
    """One subject's frames side by side, (SIZE, FRAMES * SIZE, 3) float."""
    seq = Sequence(Subject(subject_dir), "train")
    positions = np.linspace(0, len(seq) - 1, FRAMES).round().astype(int).tolist()
    data = load_frames(seq, SIZE, torch.device("cpu"), positions, ignore_hanging_hair=True)
    if data.scored is None:
        raise SystemExit(f"{subject_dir}: no parsing maps, nothing is left out")
    images = []
    for i in range(len(positions)):
        image = data.rgb[i].permute(1, 2, 0).numpy().copy()
        hair = (data.parsing[i] == HAIR_LABEL).numpy()
        left_out = data.scored[i, 0].numpy() == 0
        image[hair & ~left_out] = 0.5 * image[hair & ~left_out] + 0.5 * np.array([1.0, 1.0, 0.0])
        image[left_out] = 0.4 * image[left_out] + 0.6 * np.array([1.0, 0.0, 0.0])
        for x, y in data.landmarks[i, JAW_CONTOUR].round().long().tolist():
            image[max(y - 1, 0):y + 2, max(x - 1, 0):x + 2] = (0.0, 1.0, 1.0)
        images.append(np.pad(image, ((0, SIZE - image.shape[0]), (0, SIZE - image.shape[1]), (0, 0))))
    return np.concatenate(images, axis=1)


sheet = np.concatenate([row(path) for path in sys.argv[2:]], axis=0)
iio.imwrite(sys.argv[1], (np.clip(sheet, 0, 1) * 255).astype(np.uint8))
