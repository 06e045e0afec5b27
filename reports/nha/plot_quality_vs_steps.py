"""NHA's full-head Hausdorff distance against the number of training steps (the quality-against-
fitting-time curve in geometry; the fitting seconds per step are in reports/nha/README.md): one line
per configuration, one marker per subject, the mean of the subjects dashed.
Run as: python reports/nha/plot_quality_vs_steps.py [--subject=S] OUT.png BASELINE.jsonl LABEL:STEPS=RESULTS.jsonl[,MORE.jsonl] [...]
(--subject=S draws that subject alone, against its own baseline; arguments with the same LABEL form
one line; one point's records may come from several files, e.g. one per seed, and a subject's value is
then the mean over its seeds; BASELINE.jsonl holds the tracked head model's records, drawn as its mean
over the subjects, or subject S's value, and half of it, the paper's relation)."""
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from nha_bench.results import ResultStore

MARKERS = {"subject_f1": "o", "subject_f2": "s", "subject_m1": "^", "subject_m2": "v"}
arguments = sys.argv[1:]
only = arguments.pop(0).removeprefix("--subject=") if arguments[0].startswith("--subject=") else None
subjects = {only: MARKERS[only]} if only else MARKERS


def full_distances(paths: str, method: str = "nha") -> pd.Series:
    """hausdorff_full of a method's synthetic records in the comma-separated ``paths``, per subject
    (the newest record of each seed, averaged over the seeds)."""
    records = pd.concat([ResultStore(path).frame() for path in paths.split(",")], ignore_index=True)
    records = records[(records.method == method) & (records.dataset == "synthetic") & (records.metric == "hausdorff_full")
                      & records.subject.isin(list(subjects))]
    return records.groupby("subject").value.mean()


points: dict[str, list[tuple[int, pd.Series]]] = defaultdict(list)
for argument in arguments[2:]:
    key, path = argument.split("=", 1)
    label, steps = key.rsplit(":", 1)
    points[label].append((int(steps), full_distances(path)))

figure, axis = plt.subplots(figsize=(7, 5.5))
for colour, (label, series) in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], points.items()):
    series.sort(key=lambda item: item[0])
    for subject, marker in subjects.items():
        xs = [steps for steps, values in series if subject in values]
        axis.plot(xs, [values[subject] for steps, values in series if subject in values], marker=marker, color=colour,
                  alpha=1 if only else 0.5, linewidth=2 if only else 0.8, label=label if only else None)
    if not only:
        complete = [(steps, values.mean()) for steps, values in series if len(values) == len(MARKERS)]
        axis.plot(*zip(*complete), linestyle="--", marker="D", linewidth=2, color=colour, label=f"{label}: mean of 4")
baseline = full_distances(arguments[1], "headmodel").mean()
axis.axhline(baseline, color="grey", linestyle=":", label=f"tracked head model, {only or 'mean'} {baseline:.2f}")
axis.axhline(baseline / 2, color="black", linestyle=":", label=f"half of it (the paper's relation), {baseline / 2:.2f}")
title = f"NHA on {only}" if only else "NHA on the synthetic subjects (markers: f1 o, f2 s, m1 ^, m2 v)"
axis.set(xlabel="training steps", ylabel="Hausdorff full (mm)", title=title)
axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8)  # below: the lines fill the axes
figure.tight_layout()
figure.savefig(arguments[0], dpi=90)
