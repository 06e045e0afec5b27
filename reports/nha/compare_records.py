"""Several NHA configurations side by side, from their result records (NHA's records of the
dataset, or another method's where the files are prefixed with METHOD@; other records in the files
are ignored). Synthetic: the full-head Hausdorff distance per subject
and its mean, and the means of the face distance, normal error and L1. Real: L1 per clip and the
means of L1, MS-SSIM, CSIM and CPBD. Means are over the subjects the record file has (`n` says how
many); a subject fitted with several seeds counts with the mean over them.
With --seeds, each tag's per-subject metric is also printed per seed.
Prints each subject's data fingerprint per tag where the records name one.
Run as: python reports/nha/compare_records.py [--real] [--seeds] TAG=[METHOD@]RESULTS.jsonl[,RESULTS.jsonl ...] [TAG=... ...]
(several files after one tag are read as one, e.g. the seeds of one configuration; METHOD defaults
to nha, e.g. `baseline=headmodel@../results/results.jsonl`)."""
import sys

import pandas as pd

from nha_bench.results import ResultStore

SUBJECTS = {"synthetic": ("subject_f1", "subject_f2", "subject_m1", "subject_m2"), "real": ("d3", "d6", "d9", "d14")}
PER_SUBJECT = {"synthetic": "hausdorff_full", "real": "l1"}
MEANS = {"synthetic": ("hausdorff_full", "hausdorff_face", "normal_error", "l1"), "real": ("l1", "msssim", "csim", "cpbd")}


def method_records(spec: str, dataset: str) -> pd.DataFrame:
    """The successful records of the dataset in ``[METHOD@]`` comma-separated record files."""
    method, _, paths = spec.rpartition("@")
    records = pd.concat([ResultStore(path).frame() for path in paths.split(",")], ignore_index=True)
    return records[(records.method == (method or "nha")) & (records.dataset == dataset) & (records.status == "ok")]


def summary(spec: str, dataset: str) -> dict[str, float]:
    """One row from ``[METHOD@]`` comma-separated record files: the method's per-subject metric,
    then means over the subjects present."""
    records = method_records(spec, dataset)
    value = records.pivot_table(index="subject", columns="metric", values="value", aggfunc="mean")
    row = {s.removeprefix("subject_"): value.at[s, PER_SUBJECT[dataset]] if s in value.index else float("nan")
           for s in SUBJECTS[dataset]}
    row["n"] = len(value)
    row.update({metric.removeprefix("hausdorff_"): value[metric].mean() if metric in value else float("nan")
                for metric in MEANS[dataset]})  # a method without the metric (e.g. the baseline's CSIM) reads NaN
    return row


def data_versions(spec: str, dataset: str) -> dict[str, str]:
    """Per subject the data fingerprint its records name ('-': none recorded, 'several': more than one)."""
    records = method_records(spec, dataset)
    prints = records.get("data_fingerprint", pd.Series("", index=records.index)).fillna("")
    by_subject = prints.groupby(records["subject"]).agg(lambda p: sorted(set(p)))
    return {s.removeprefix("subject_"): ("-" if fps == [""] else fps[0][:8] if len(fps) == 1 else "several")
            for s, fps in by_subject.items()}


flags = {arg for arg in sys.argv[1:] if arg.startswith("--")}
dataset = "real" if "--real" in flags else "synthetic"
specs = [arg.split("=", 1) for arg in sys.argv[1:] if arg not in flags]
rows = {tag: summary(path, dataset) for tag, path in specs}
print(pd.DataFrame(rows).T.round(3).to_string())
versions = {tag: data_versions(path, dataset) for tag, path in specs}
if any(v != "-" for row in versions.values() for v in row.values()):
    print("\ndata_fingerprint per subject (first 8 digits; '-' not recorded; tags compare only on equal data)")
    print(pd.DataFrame(versions).T.to_string())
if "--seeds" in flags:
    for tag, path in specs:
        records = method_records(path, dataset)
        records = records[records.metric == PER_SUBJECT[dataset]]
        print(f"\n{tag}: {PER_SUBJECT[dataset]} per seed")
        print(records.pivot_table(index="seed", columns="subject", values="value").round(3).to_string())
