"""Provenance of parsing_fallback_hair.png: for two train frames of each prepared clip, the frame |
the parsing stored by `nha-bench data prepare` (before) | `fallback_parsing` of the current code on
the same crop with a face mesh detected on it (after), at half size.
Run as: python reports/real/parsing_before_after.py DATA_ROOT OUT.png   (DATA_ROOT holds d3 d6 d9 d14)"""
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from nha_bench.datasets.format import Subject
from nha_bench.datasets.video.landmarks import FaceMesh
from nha_bench.datasets.video.parsing import fallback_parsing

PALETTE = np.array([[0, 0, 0], [230, 180, 150], [0, 0, 255], [0, 255, 0], [255, 0, 0], [255, 255, 0], [128, 128, 128]],
                   np.uint8)  # background, skin+neck, eyes, ears, hair, mouth, clothes
root, face_mesh, rows = Path(sys.argv[1]), FaceMesh(), []
for clip in ("d3", "d6", "d9", "d14"):
    subject = Subject(root / clip)
    train = subject.split("train")
    for index in (train[0], train[len(train) // 2]):
        rgb = subject.rgb(index)
        rgb = rgb if rgb.dtype == np.uint8 else (rgb * 255).round().astype(np.uint8)
        faces = face_mesh(rgb)
        after = fallback_parsing(rgb, subject.mask(index).astype(bool), faces[0] if faces else None)
        rows.append(np.concatenate([rgb, PALETTE[subject.parsing(index)], PALETTE[after]], 1))
iio.imwrite(sys.argv[2], np.concatenate(rows, 0)[::2, ::2])
