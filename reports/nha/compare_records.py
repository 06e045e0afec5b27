"""Synthetic geometry of several NHA configurations side by side, from their result records (NHA's
synthetic records; others in the files are ignored):
full-head Hausdorff distance per subject and its mean, and the means of the face distance, normal
error and L1 (means over the subjects the record file has; `n` says how many; a subject fitted with
several seeds counts with the mean over them).
Run as: python reports/nha/compare_records.py TAG=RESULTS.jsonl[,RESULTS.jsonl ...] [TAG=... ...]
(several files after one tag are read as one, e.g. the seeds of one configuration)."""
import sys

import pandas as pd

from nha_bench.results import ResultStore

SUBJECTS = ("subject_f1", "subject_f2", "subject_m1", "subject_m2")


def summary(paths: str) -> dict[str, float]:
    """One row from the comma-separated record files: hausdorff_full per subject, then means over
    the subjects present."""
    records = pd.concat([ResultStore(path).frame() for path in paths.split(",")], ignore_index=True)
    records = records[(records.method == "nha") & (records.dataset == "synthetic") & (records.status == "ok")]
    value = records.pivot_table(index="subject", columns="metric", values="value", aggfunc="mean")
    row = {s[-2:]: value.at[s, "hausdorff_full"] if s in value.index else float("nan") for s in SUBJECTS}
    row.update(n=len(value), full=value.hausdorff_full.mean(), face=value.hausdorff_face.mean(),
               normal=value.normal_error.mean(), l1=value.l1.mean())
    return row


rows = {tag: summary(path) for tag, path in (arg.split("=", 1) for arg in sys.argv[1:])}
print(pd.DataFrame(rows).T.round(3).to_string())
