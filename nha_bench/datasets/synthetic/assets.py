"""Locate the MakeHuman data root: extract the shipped archive once into a cache folder."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from nha_bench.errors import UnavailableError

ENV_VAR = "NHA_BENCH_MAKEHUMAN_DATA"
DEFAULT_CACHE = Path("~/.cache/nha-bench/makehuman")
ARCHIVE_NAME = "makehuman_data.tar.xz"
_PROBE = Path("data/3dobjs/base.obj")


def _archive_candidates() -> list[Path]:
    here = Path(__file__).resolve()
    return [parent / "shared" / "makehuman" / ARCHIVE_NAME for parent in here.parents] + [
        Path("/work/shared/makehuman") / ARCHIVE_NAME
    ]


def makehuman_root(data_root: Path | None = None) -> Path:
    """The folder that contains MakeHuman's ``data/`` (use it as ``MHCORE_DATA``).

    Order: ``data_root`` argument, ``$NHA_BENCH_MAKEHUMAN_DATA``, ``~/.cache/nha-bench/makehuman``.
    If the folder lacks ``data/3dobjs/base.obj`` and the project's ``shared/makehuman`` archive
    is found, it is extracted there once.
    """
    root = Path(data_root or os.environ.get(ENV_VAR) or DEFAULT_CACHE).expanduser()
    if (root / _PROBE).is_file():
        return root
    archive = next((p for p in _archive_candidates() if p.is_file()), None)
    if archive is None:
        raise UnavailableError(
            "MakeHuman data not found",
            root,
            fix=f"put MakeHuman 1.x system data (data/3dobjs/base.obj, targets, skins, hair, ...) there, "
            f"or set {ENV_VAR} / --data-root to a folder that contains data/",
        )
    root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    if not (root / _PROBE).is_file():
        raise UnavailableError(f"{archive} did not contain {_PROBE}", root, fix="re-create the archive")
    return root
