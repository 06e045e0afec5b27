"""Errors raised by nha-bench: each names the file it concerns and how to fix it."""

from __future__ import annotations

from pathlib import Path


class NhaBenchError(Exception):
    """Base error. ``path`` is the file or folder concerned, ``fix`` what the user can do."""

    def __init__(self, message: str, path: str | Path | None = None, fix: str | None = None):
        self.path = Path(path) if path is not None else None
        self.fix = fix
        parts = [message]
        if path is not None:
            parts.append(f"file: {path}")
        if fix:
            parts.append(f"fix: {fix}")
        super().__init__(" | ".join(parts))


class DatasetError(NhaBenchError):
    """A dataset folder or one of its files is missing, corrupt or inconsistent."""


class MetricInputError(NhaBenchError):
    """A metric got inputs it cannot score (shape mismatch, NaN, empty mask, ...)."""


class UnavailableError(NhaBenchError):
    """A model, weight file or optional dependency needed for a computation is missing."""


class ExistsError(NhaBenchError):
    """An output already exists and ``--force`` was not given."""


class RenderInputError(NhaBenchError):
    """A renderer function got an argument of the wrong shape, type or value."""
