"""The datasets the CLI knows by name: the built-in tiny fixture and the generated tiers."""

from __future__ import annotations

import os
from pathlib import Path

from nha_bench.datasets.format import Subject
from nha_bench.datasets.validate import find_subjects
from nha_bench.errors import DatasetError
from nha_bench.registry import DATASETS

TINY_ROOT = Path(__file__).parent / "fixtures" / "tiny"


def data_home() -> Path:
    """Where generated datasets live: $NHA_BENCH_DATA or ./data."""
    return Path(os.environ.get("NHA_BENCH_DATA", "data"))


def _subjects_in(root: Path, how_to_make: str) -> list[Subject]:
    folders = find_subjects(root)
    if not folders:
        raise DatasetError("no subject folders (with meta.json) found", root, fix=how_to_make)
    return [Subject(f) for f in folders]


@DATASETS.register("tiny")
def tiny(root: Path | None = None) -> list[Subject]:
    """The built-in tiny synthetic fixture shipped inside the package (demo, tests, CI)."""
    return _subjects_in(root or TINY_ROOT, "reinstall nha-bench; the fixture ships with the package")


@DATASETS.register("synthetic")
def synthetic(root: Path | None = None) -> list[Subject]:
    """The MakeHuman synthetic tier (paper Table 1), made by `nha-bench data synth`."""
    root = root or data_home() / "synthetic"
    return _subjects_in(root, f"generate it with `nha-bench data synth --out {root}`")


@DATASETS.register("real")
def real(root: Path | None = None) -> list[Subject]:
    """The real-video tier (paper Table 2), made by `nha-bench data prepare VIDEO`."""
    root = root or data_home() / "real"
    return _subjects_in(root, f"prepare videos with `nha-bench data prepare VIDEO --out {root}/NAME`")


def load_subjects(dataset: str, root: Path | None = None, names: list[str] | None = None) -> list[Subject]:
    """Subjects of a named dataset (optionally at ``root``), filtered to ``names`` if given."""
    subjects = DATASETS.get(dataset)(root)
    if names:
        by_name = {s.root.name: s for s in subjects}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise DatasetError(f"unknown subjects {unknown}; available: {sorted(by_name)}", root or dataset)
        subjects = [by_name[n] for n in names]
    return subjects
