"""Validation frames of one subject rendered by several NHA run folders side by side (the report's
`image_grid`: GT | one column per run, evenly spaced val frames), to look at what a configuration
changes. Each RUN_DIR is a runs folder holding nha/DATASET/SUBJECT (seed 0).
Run as: python reports/nha/grid_compare.py OUT.jpg DATA_ROOT DATASET FRAMES SUBJECT[,SUBJECT...] RUN_DIR [RUN_DIR ...]
(one block of FRAMES rows per subject, stacked)."""
import sys
import tempfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from nha_bench.report import image_grid

out, data_root, dataset, frames, subjects, *run_dirs = sys.argv[1:]
with tempfile.TemporaryDirectory() as tmp:  # image_grid reads METHOD/DATASET/SUBJECT: one link per run
    columns = [f"run{i}" for i in range(len(run_dirs))]
    for name, run_dir in zip(columns, run_dirs):
        (Path(tmp) / name).symlink_to(Path(run_dir, "nha").resolve())
    blocks = []
    for subject in subjects.split(","):
        grid = image_grid(Path(tmp), dataset, Path(data_root, subject), columns, int(frames))
        if grid is None or grid[1] != columns:
            sys.exit(f"{subject}: not every run folder has nha/{dataset}/{subject}/outputs/rgb")
        blocks.append(grid[0])
iio.imwrite(out, np.concatenate(blocks, axis=0), quality=88)
