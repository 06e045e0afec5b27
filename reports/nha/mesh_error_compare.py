"""Mean per-vertex mesh error maps of one synthetic subject for several NHA run folders, one row per
run (the report's `mesh_errors`: front and side, blue 0 to red 20 mm), and each run's mean error.
Each RUN_DIR is a runs folder holding nha/synthetic/SUBJECT (seed 0).
Run as: python reports/nha/mesh_error_compare.py OUT.png DATA_ROOT SUBJECT RUN_DIR [RUN_DIR ...]"""
import sys
from pathlib import Path

import imageio.v3 as iio

from nha_bench.report import mesh_errors
from nha_bench.runner import run_folder

out, data_root, subject, *run_dirs = sys.argv[1:]
outputs = {run_dir: run_folder(Path(run_dir), "nha", "synthetic", subject) / "outputs" for run_dir in run_dirs}
errors = mesh_errors(Path(data_root, subject), outputs)
if errors is None or list(errors[1]) != run_dirs:
    sys.exit(f"{subject}: not every run folder has nha/synthetic/{subject}/outputs/mesh")
sheet, means = errors
iio.imwrite(out, sheet)
for run_dir, mean in means.items():
    print(f"{run_dir}: mean vertex error {mean:.2f} mm")
