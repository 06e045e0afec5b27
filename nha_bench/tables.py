"""Paper-style tables from result records (pandas): Table 1 (geometry) and Table 2 (appearance).

Missing entries are kept and marked: "n/a" when a metric was not scored for a method (e.g. the
method has no geometry), "unavail." when it was unavailable (e.g. missing LPIPS weights); the
reasons are listed under the table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import nha_bench.metrics  # noqa: F401  (registers the metrics)
import nha_bench.methods  # noqa: F401  (registers the methods)
from nha_bench.evaluation import APPEARANCE, GEOMETRY
from nha_bench.methods.external import EXTERNAL_METHODS
from nha_bench.registry import METHODS, METRICS

MISSING, UNAVAILABLE = "n/a", "unavail."
MEAN_COLUMN = "mean"
"""Table 1's last column: each row's mean over the subjects every method has."""
LABELS = {
    "normal_error": "Normal error",
    "hausdorff_face": "Hausdorff (face)",
    "hausdorff_full": "Hausdorff (full)",
    "l1": "L1",
    "msssim": "MS-SSIM",
    "lpips": "LPIPS",
    "csim": "CSIM",
    "cpbd": "CPBD",
}


@dataclass
class Table:
    """A formatted table plus the notes that explain its missing or non-comparable cells."""

    title: str
    frame: pd.DataFrame
    notes: list[str]

    def markdown(self) -> str:
        body = self.frame.to_markdown()
        notes = "".join(f"\n- {n}" for n in self.notes)
        return f"### {self.title}\n\n{body}\n{notes}\n"

    def latex(self) -> str:
        return self.frame.to_latex(caption=self.title, escape=True)

    def csv(self) -> str:
        return self.frame.to_csv()


def _method_class(name: str) -> type | None:
    """The registered class of a native method; None for one whose package is not installed."""
    try:
        return METHODS.get(name)
    except Exception:  # a method from a record whose package is not installed
        return None


def method_info(name: str) -> tuple[str, dict[str, float]]:
    """Display name and paper scores of a native or external method."""
    if name in EXTERNAL_METHODS:
        m = EXTERNAL_METHODS[name]
        return m.display_name, m.paper_scores
    cls = _method_class(name)
    return getattr(cls, "display_name", name), getattr(cls, "paper_scores", {})


def display_order(methods: Iterable[str]) -> list[str]:
    """Methods in the order tables and grids show them: by name, reference baselines last."""
    return sorted(set(methods), key=lambda name: (getattr(_method_class(name), "reference_baseline", False), name))


def _arrow(metric: str) -> str:
    spec = METRICS.get(metric).spec
    return f"{LABELS.get(metric, metric)} {'↑' if spec.higher_is_better else '↓'}"


def _format(metric: str, value: float) -> str:
    return f"{value:.1f}°" if metric == "normal_error" else f"{value:.3f}" if metric in APPEARANCE.metrics else f"{value:.2f}"


def _cell(rows: pd.DataFrame, metric: str, notes: set[str], who: str) -> str:
    """One table entry: the mean over each subject's seeds, then the frame-weighted mean over the
    subjects; with two or more seeds fitted on every subject of the entry, ± the standard deviation
    of the entry's value over those seeds."""
    if rows.empty:
        return MISSING
    ok = rows[rows["status"] == "ok"]
    if ok.empty:
        reasons = "; ".join(sorted({str(r) for r in rows["reason"]}))
        notes.add(f"{who} {LABELS.get(metric, metric)}: unavailable ({reasons})")
        return UNAVAILABLE
    frames = ok.groupby("subject")["n_frames"].max()
    by_seed = ok.pivot_table(index="seed", columns="subject", values="value", aggfunc="mean")
    value = float((by_seed.mean() * frames).sum() / max(frames.sum(), 1))
    text = _format(metric, value)
    if len(by_seed) > 1:
        complete = by_seed.dropna()
        notes.add(f"{who}: each subject's mean over the seeds it was fitted with ({', '.join(map(str, by_seed.index))} in all); "
                  "± the standard deviation over the seeds fitted on every subject")
        if len(complete) > 1:
            per_seed = (complete * frames).sum(axis=1) / frames.sum()
            text += f" ±{_format(metric, float(per_seed.std())).rstrip('°')}"
    if not ok["comparable"].all():
        notes.add(f"{who} {LABELS.get(metric, metric)}: computed with a stand-in model ({', '.join(sorted(set(ok['backend'])))}), not comparable")
        return f"{text}*"
    return text


def _joined_by(rows: pd.DataFrame, key: str, values: str) -> pd.Series:
    """Per value of column ``key`` ('' where none is recorded), the sorted distinct ``values`` joined."""
    return rows.groupby(rows[key].fillna(""))[values].agg(lambda v: ", ".join(map(str, sorted(set(v)))))


def _mixed_configuration_notes(records: pd.DataFrame) -> set[str]:
    """One note per method and subject whose seeds were fitted with different configurations
    (``config_hash``): its mean over the seeds mixes method versions. Hashes are compared within a
    subject only, since a method's configuration may name the subject's own data (its tracking)."""
    notes = set()
    if "config_hash" not in records:
        return notes
    for (method, subject), rows in records.groupby(["method", "subject"]):
        seeds = _joined_by(rows, "config_hash", "seed")
        if len(seeds) > 1:
            versions = "; ".join(f"{h or 'none recorded'}: seeds {s}" for h, s in seeds.items())
            notes.add(f"{method_info(method)[0]} on {subject}: seeds fitted with different configurations ({versions}), "
                      "so its mean over the seeds mixes method versions; fit every seed with one configuration")
    return notes


def _data_version_notes(records: pd.DataFrame) -> set[str]:
    """Which data the entries were scored on: one note naming each subject's data fingerprint where
    all its records agree on one, and one note per subject whose records were scored on different
    versions of its data, or partly by records that name none (written before it was stored)."""
    notes, agreed = set(), []
    if "data_fingerprint" not in records:
        return notes
    for subject, rows in records.groupby("subject"):
        by_print = _joined_by(rows, "data_fingerprint", "method")
        versions = "; ".join(f"{who}: {fp or 'none recorded'}" for fp, who in by_print.items())
        if (by_print.index != "").sum() > 1:
            notes.add(f"{subject}: scored on different versions of its data ({versions}), so its entries compare "
                      "different data; score every method on one version (`nha-bench run --rescore`)")
        elif len(by_print) > 1:
            notes.add(f"{subject}: whether every method scored the same data is unknown ({versions}; records "
                      "written before the data fingerprint was stored name none)")
        elif by_print.index[0]:
            agreed.append(f"{subject} {by_print.index[0]}")
    if agreed:
        notes.add(f"data scored (data_fingerprint): {', '.join(agreed)}")
    return notes


def _common_subjects(records: pd.DataFrame) -> tuple[pd.DataFrame, set[str]]:
    """The records of the subjects every method has, and a note naming those left out: a mean over
    different subjects would compare different data."""
    by_method = records.groupby("method")["subject"].agg(lambda s: set(s))
    common = set.intersection(*by_method) if len(by_method) else set()
    left_out = sorted(set.union(*by_method) - common) if len(by_method) else []
    if not left_out:
        return records, set()
    note = f"averaged over the subjects every method has ({', '.join(sorted(common)) or 'none'}); left out: {', '.join(left_out)}"
    return records[records["subject"].isin(common)], {note}


def table1(records: pd.DataFrame, dataset: str) -> Table:
    """Geometry per subject (paper Table 1): rows metric x method, columns the subjects and their
    mean (over the subjects every method has; ± over the seeds fitted on all of them)."""
    df = records[(records["dataset"] == dataset) & records["metric"].isin(GEOMETRY.metrics)]
    methods = display_order(records.loc[records["dataset"] == dataset, "method"])
    subjects = sorted(records.loc[records["dataset"] == dataset, "subject"].unique())
    notes: set[str] = set()
    common, mean_notes = _common_subjects(df)
    mean_subjects = set(common["subject"])
    rows = {}
    for metric in GEOMETRY.metrics:
        for method in methods:
            name, _ = method_info(method)
            picked = df[(df["metric"] == metric) & (df["method"] == method)]
            row = {s: _cell(picked[picked["subject"] == s], metric, notes, name) for s in subjects}
            row[MEAN_COLUMN] = _cell(picked[picked["subject"].isin(mean_subjects)], metric, set(), name)
            rows[f"{LABELS[metric]}: {name}"] = row
    notes |= _data_version_notes(df) | _mixed_configuration_notes(df) | mean_notes
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=[*subjects, MEAN_COLUMN])
    unit_note = "Normal error in degrees (per pixel, head region); Hausdorff = mean single-sided distance prediction -> GT in mm."
    return Table(f"Table 1: geometry on {dataset} (validation split)", frame, [unit_note, *sorted(notes)])


def table2(records: pd.DataFrame, dataset: str, with_paper: bool = True) -> Table:
    """Appearance averaged over all validation frames of all subjects (paper Table 2)."""
    df = records[(records["dataset"] == dataset) & records["metric"].isin(APPEARANCE.metrics)]
    df, notes = _common_subjects(df)
    notes |= _data_version_notes(df) | _mixed_configuration_notes(df)
    rows = {}
    for method in display_order(records.loc[records["dataset"] == dataset, "method"]):
        name, paper = method_info(method)
        picked = df[df["method"] == method]
        rows[name] = {_arrow(m): _cell(picked[picked["metric"] == m], m, notes, name) for m in APPEARANCE.metrics}
        if with_paper and any(m in paper for m in APPEARANCE.metrics):
            rows[f"{name} (paper)"] = {_arrow(m): f"{paper[m]:.3f}" if m in paper else MISSING for m in APPEARANCE.metrics}
    if with_paper:
        for ext in EXTERNAL_METHODS.values():
            if f"{ext.display_name} (paper)" not in rows:
                rows[f"{ext.display_name} (paper)"] = {_arrow(m): f"{ext.paper_scores[m]:.3f}" for m in APPEARANCE.metrics}
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=[_arrow(m) for m in APPEARANCE.metrics])
    paper_note = "Rows marked (paper) are the NHA paper's numbers on its own data, for orientation only."
    return Table(f"Table 2: appearance on {dataset} (validation split, frame-weighted mean over subjects)", frame, [paper_note, *sorted(notes)])


def dataset_tables(records: pd.DataFrame) -> dict[str, Table]:
    """{"table1_<dataset>": Table 1, "table2_<dataset>": Table 2} for every dataset in ``records``;
    Table 1 only where geometry was scored (real clips have no ground-truth geometry)."""
    tables = {}
    for dataset in sorted(records["dataset"].unique()):
        if records[(records["dataset"] == dataset) & records["metric"].isin(GEOMETRY.metrics)].shape[0]:
            tables[f"table1_{dataset}"] = table1(records, dataset)
        tables[f"table2_{dataset}"] = table2(records, dataset)
    return tables


def write_tables(records: pd.DataFrame, out_dir: Path) -> list[Path]:
    """``dataset_tables`` as Markdown, LaTeX and CSV; returns the files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for key, table in dataset_tables(records).items():
        for suffix, text in (("md", table.markdown()), ("tex", table.latex()), ("csv", table.csv())):
            path = out_dir / f"{key}.{suffix}"
            path.write_text(text)
            written.append(path)
    return written
