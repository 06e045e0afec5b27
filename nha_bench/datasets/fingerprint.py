"""A subject folder's content fingerprint, stored in every result record so that scores of different
versions of the same subject (regenerated, re-prepared or re-tracked data) are told apart.

Written by hand: a hash over a folder's files is a few lines of hashlib; no library does less.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

FINGERPRINT_CHARS = 16
_CHUNK = 1 << 20
_META = "meta.json"


def subject_fingerprint(root: str | Path) -> str:
    """sha256 (first 16 hex digits) over every file below ``root``: relative path, size and bytes,
    in path order. Hidden files and folders (a name starting with '.', e.g. a generator's `.work`)
    are left out, and so is the ``extra`` block of ``meta.json`` (how and when the data were made:
    timings, source paths), so that the same data made again have the same fingerprint."""
    root = Path(root)
    digest = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))
    for path in files:
        name = path.relative_to(root).as_posix()
        if name == _META:
            content = _meta_without_extra(path)
            digest.update(f"{name}\0{len(content)}\0".encode() + content)
            continue
        digest.update(f"{name}\0{path.stat().st_size}\0".encode())
        with path.open("rb") as handle:
            while block := handle.read(_CHUNK):
                digest.update(block)
    return digest.hexdigest()[:FINGERPRINT_CHARS]


def _meta_without_extra(path: Path) -> bytes:
    """meta.json as canonical JSON without its ``extra`` block (the raw bytes if it is no JSON object)."""
    raw = path.read_bytes()
    try:
        meta = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return raw
    if not isinstance(meta, dict):
        return raw
    meta.pop("extra", None)
    return json.dumps(meta, sort_keys=True).encode()
