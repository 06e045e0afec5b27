"""Result records and their store: one JSON object per line, appended atomically."""

from __future__ import annotations

import fcntl
import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from nha_bench.datasets.fingerprint import subject_fingerprint
from nha_bench.errors import NhaBenchError
from nha_bench.metrics.base import MetricResult

KEY = ("method", "dataset", "subject", "split", "metric", "seed")


@dataclass
class Record:
    """One score: (method, dataset, subject, split, metric, seed) plus how and where it was made.
    Records written before seeds were stored load with seed 0 (the only seed then used).
    ``data_fingerprint`` names the version of the subject's data that was scored
    (:func:`nha_bench.datasets.fingerprint.subject_fingerprint`); records written before it was
    stored load with "" (unknown)."""

    method: str
    dataset: str
    subject: str
    split: str
    metric: str
    value: float | None
    unit: str
    higher_is_better: bool
    n_frames: int
    n_skipped: int = 0
    seed: int = 0
    backend: str = ""
    comparable: bool = True
    status: str = "ok"  # "ok" or "unavailable"
    reason: str | None = None
    preset: str = ""
    config_hash: str = ""
    data_fingerprint: str = ""
    git_commit: str = ""
    package_versions: dict[str, str] = field(default_factory=dict)
    device: str = ""
    wall_time_s: float = 0.0
    timestamp: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_metric(cls, result: MetricResult, context: dict[str, Any]) -> "Record":
        """A record for ``result``; ``context`` holds method/dataset/subject/split/preset/... fields."""
        return cls(
            metric=result.spec.name,
            value=result.value,
            unit=result.spec.unit,
            higher_is_better=result.spec.higher_is_better,
            n_frames=result.n_frames,
            n_skipped=result.n_skipped,
            backend=result.backend,
            comparable=result.comparable,
            status="ok" if result.value is not None else "unavailable",
            reason=result.unavailable_reason,
            extra=dict(result.extra),
            timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **context,
        )


@lru_cache(maxsize=1)
def git_commit() -> str:
    """Short commit of the working tree the package runs from ("unknown" outside git)."""
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """Versions of the packages that influence scores."""
    names = ["nha-bench", "torch", "numpy", "pytorch-msssim", "trimesh", "libigl", "scikit-image", "dlib-bin", "scipy"]
    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def provenance(subject_root: Path) -> dict[str, Any]:
    """The record fields that say what was scored with what: the subject's data version, the
    commit and the score-relevant package versions."""
    return {"data_fingerprint": subject_fingerprint(subject_root), "git_commit": git_commit(), "package_versions": package_versions()}


class ResultStore:
    """Append-only JSONL file of records; each append is one locked write of whole lines."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def append(self, records: Iterable[Record]) -> None:
        """Append records atomically (one O_APPEND write under an exclusive lock)."""
        payload = "".join(json.dumps(asdict(r), sort_keys=True) + "\n" for r in records).encode()
        if not payload:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, payload)
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def load(self) -> list[Record]:
        """All records; a corrupt line is an error naming the file and line."""
        if not self.path.is_file():
            raise NhaBenchError("results file does not exist", self.path, fix="run `nha-bench run` first")
        known = {f.name for f in fields(Record)}
        records = []
        for number, line in enumerate(self.path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                records.append(Record(**{k: v for k, v in raw.items() if k in known}))
            except (json.JSONDecodeError, TypeError) as exc:
                raise NhaBenchError(f"line {number} is not a valid record ({exc})", self.path) from exc
        return records

    def frame(self, latest_only: bool = True) -> pd.DataFrame:
        """Records as a DataFrame; by default only the newest record per key."""
        df = pd.DataFrame([asdict(r) for r in self.load()])
        if df.empty or not latest_only:
            return df
        return df.sort_values("timestamp", kind="stable").drop_duplicates(list(KEY), keep="last").reset_index(drop=True)
