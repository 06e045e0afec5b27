"""Validation frames of one subject rendered by several NHA run folders side by side (the report's
`image_grid`: GT | one column per run, evenly spaced val frames), to look at what a configuration
changes. Each RUN_DIR is a runs folder holding nha/DATASET/SUBJECT (seed 0).
Run as: python reports/nha/grid_compare.py OUT.jpg DATA_ROOT DATASET FRAMES SUBJECT[,SUBJECT...] RUN_DIR [RUN_DIR ...]
(one block of FRAMES rows per subject, stacked)."""
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from nha_bench.report import image_grid
from nha_bench.runner import run_folder

out, data_root, dataset, frames, subjects, *run_dirs = sys.argv[1:]
blocks = []
for subject in subjects.split(","):
    outputs = {run_dir: run_folder(Path(run_dir), "nha", dataset, subject) / "outputs" for run_dir in run_dirs}
    grid = image_grid(Path(data_root, subject), outputs, int(frames))
    if grid is None or grid[1] != run_dirs:
        sys.exit(f"{subject}: not every run folder has nha/{dataset}/{subject}/outputs/rgb")
    blocks.append(grid[0])
iio.imwrite(out, np.concatenate(blocks, axis=0), quality=88)
