"""The report's training curves (total loss; probe l1 over fitting time) of the runs under one folder, as a PNG.
Run as: python reports/nha/plot_training_curves.py RUNS_DIR OUT.png  (RUNS_DIR holds METHOD/DATASET/SUBJECT run folders)"""
import sys
from pathlib import Path

from nha_bench.report import training_figure

figure = training_figure(Path(sys.argv[1]))
if figure is None:
    sys.exit(f"{sys.argv[1]}: no run folder with a training log (METHOD/DATASET/SUBJECT/train_log.jsonl)")
figure.savefig(sys.argv[2], dpi=110)
