"""A subject folder's content fingerprint, stored in every result record so that scores of different
versions of the same subject (regenerated, re-prepared or re-tracked data) are told apart.

Written by hand: a hash over a folder's files is a few lines of hashlib; no library does less.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

FINGERPRINT_CHARS = 16
_CHUNK = 1 << 20


def subject_fingerprint(root: str | Path) -> str:
    """sha256 (first 16 hex digits) over every file below ``root``: relative path, size and bytes,
    in path order. Hidden files and folders (a name starting with '.', e.g. a generator's `.work`)
    are left out."""
    root = Path(root)
    digest = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))
    for path in files:
        digest.update(f"{path.relative_to(root).as_posix()}\0{path.stat().st_size}\0".encode())
        with path.open("rb") as handle:
            while block := handle.read(_CHUNK):
                digest.update(block)
    return digest.hexdigest()[:FINGERPRINT_CHARS]
