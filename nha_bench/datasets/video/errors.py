"""Errors and warnings of video preparation."""

from __future__ import annotations

from types import ModuleType

from nha_bench.errors import DatasetError, UnavailableError


class VideoError(DatasetError):
    """The input video cannot be used (unreadable, empty, too small, no face)."""


class VideoWarning(UserWarning):
    """A recoverable problem in the input video; the message names the frames concerned."""


def frame_ranges(frames: list[int] | tuple[int, ...], limit: int = 8) -> str:
    """Compact text for frame numbers: [1, 2, 3, 7] -> '1-3, 7' (first ``limit`` ranges)."""
    ranges: list[tuple[int, int]] = []
    for f in sorted(frames):
        if ranges and f == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], f)
        else:
            ranges.append((f, f))
    text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in ranges[:limit])
    return text + (f", ... ({len(ranges) - limit} more ranges)" if len(ranges) > limit else "")


def import_mediapipe() -> ModuleType:
    """The mediapipe module, or UnavailableError saying how to install it."""
    try:
        import mediapipe
    except ImportError as exc:
        raise UnavailableError("mediapipe is not installed", fix="pip install 'nha-bench[real]' (mediapipe==0.10.14)") from exc
    return mediapipe
