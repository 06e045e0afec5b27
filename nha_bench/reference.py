"""Reference scores for regression checks (CI): compare current records with a stored file.

A reference file (``reports/reference/*.json``)::

    {"command": "...", "git_commit": "...", "tolerances": {"l1": 0.002, ...},
     "scores": [{"method": ..., "dataset": ..., "subject": ..., "split": ..., "metric": ..., "seed": ...,
                 "value": ...}]}

Scores written before seeds were stored are read as seed 0 (as records are).

Tolerances are absolute, per metric. A missing score, or an unavailable one where the reference
has a value, fails the check as well as a value outside its tolerance.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from nha_bench.errors import NhaBenchError
from nha_bench.results import KEY

# Absolute tolerances: CPU float differences across machines move tiny-preset scores slightly;
# these bounds are far below the differences between methods.
DEFAULT_TOLERANCES = {
    "l1": 0.005,
    "msssim": 0.01,
    "lpips": 0.01,
    "csim": 0.02,
    # CPBD (a sharpness count over few edge blocks of the 128^2 tiny renders) is the most
    # sensitive: NHA's tiny score moved 0.3708 -> 0.3972 on a new machine (session 19) while its L1
    # moved 0.0006, and by 0.002 between 1 and 2 CPU threads
    "cpbd": 0.04,
    "normal_error": 0.5,
    "hausdorff_full": 0.2,
    "hausdorff_face": 0.2,
}


@dataclass
class Difference:
    """One failed comparison."""

    key: tuple[str, ...]
    reference: float | None
    current: float | None
    tolerance: float

    def __str__(self) -> str:
        cur = "missing" if self.current is None else f"{self.current:.4f}"
        ref = "none" if self.reference is None else f"{self.reference:.4f}"
        delta = "" if None in (self.current, self.reference) else f"  (diff {self.current - self.reference:+.4f})"
        return f"{'/'.join(map(str, self.key))}: reference {ref}, current {cur}, tolerance {self.tolerance}{delta}"


def load_reference(path: Path) -> dict:
    """Read a reference file; errors name it."""
    if not path.is_file():
        raise NhaBenchError("reference file does not exist", path, fix="write one with `nha-bench check --write`")
    try:
        data = json.loads(path.read_text())
        data.setdefault("tolerances", {})
        for score in data["scores"]:
            score.setdefault("seed", 0)
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise NhaBenchError(f"reference file is not valid ({exc})", path) from exc
    return data


def compare(records: pd.DataFrame, reference: dict) -> list[Difference]:
    """All differences between ``records`` (latest per key) and the reference scores."""
    tolerances = {**DEFAULT_TOLERANCES, **reference["tolerances"]}
    current = {tuple(row[k] for k in KEY): row for _, row in records.iterrows()} if not records.empty else {}
    differences = []
    for score in reference["scores"]:
        key = tuple(score[k] for k in KEY)
        tol = float(tolerances.get(score["metric"], 0.0))
        row = current.get(key)
        value = None if row is None or row["status"] != "ok" else float(row["value"])
        if value is None or score["value"] is None or abs(value - score["value"]) > tol:
            if not (value is None and score["value"] is None and row is not None):
                differences.append(Difference(key, score["value"], value, tol))
    return differences


def reference_from(records: pd.DataFrame, command: str, git_commit: str) -> dict:
    """A reference document holding the given records' values."""
    scores = [
        {**{k: int(row[k]) if k == "seed" else row[k] for k in KEY}, "value": None if row["status"] != "ok" else float(row["value"])}
        for _, row in records.sort_values(list(KEY)).iterrows()
    ]
    return {"command": command, "git_commit": git_commit, "tolerances": DEFAULT_TOLERANCES, "scores": scores}
