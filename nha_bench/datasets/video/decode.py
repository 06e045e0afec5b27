"""Video decoding with imageio (ffmpeg backend) and frame subsampling."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import imageio.v2 as imageio
import numpy as np

from nha_bench.datasets.video.errors import VideoError

MIN_SIDE = 64  # below this no face model gives usable landmarks


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video, plus the frames we keep."""

    path: Path
    width: int
    height: int
    fps: float
    n_source: int  # decodable frames in the file
    indices: tuple[int, ...]  # source frame numbers kept after fps subsampling / max_frames
    out_fps: float


def _reader(path: Path):
    try:
        return imageio.get_reader(str(path), format="FFMPEG")
    except Exception as exc:  # imageio/ffmpeg raise many types for unreadable files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise VideoError(f"cannot open video ({reason})", path, fix="check that the file is a video ffmpeg can read") from exc


def select_indices(n_source: int, src_fps: float, fps: float | None, max_frames: int | None) -> tuple[tuple[int, ...], float]:
    """Source frame numbers to keep: every ``src_fps / fps``-th frame (nearest), then the first ``max_frames``."""
    if fps is None or fps >= src_fps - 1e-6:
        step, out_fps = 1.0, src_fps
    else:
        if fps <= 0:
            raise VideoError(f"fps must be positive, got {fps}", fix="pass e.g. --fps 15")
        step, out_fps = src_fps / fps, fps
    count = int(math.floor((n_source - 1) / step + 1e-9)) + 1 if n_source else 0
    indices = tuple(sorted({min(n_source - 1, int(round(k * step))) for k in range(count)}))
    if max_frames is not None:
        if max_frames < 1:
            raise VideoError(f"max_frames must be >= 1, got {max_frames}")
        indices = indices[:max_frames]
    return indices, out_fps


def probe(path: Path, fps: float | None = None, max_frames: int | None = None) -> VideoInfo:
    """Open ``path``, count its frames and check its size; raises VideoError for unusable files."""
    path = Path(path)
    if not path.is_file():
        raise VideoError("video file does not exist", path, fix="check the path")
    reader = _reader(path)
    try:
        meta = reader.get_meta_data()
        width, height = (int(v) for v in meta.get("size", (0, 0)))
        src_fps = float(meta.get("fps") or 0.0)
        try:
            n_source = reader.count_frames()  # exact count (decodes the stream headers with ffmpeg)
        except Exception as exc:
            raise VideoError(f"cannot count frames ({exc})", path, fix="re-encode the video, e.g. ffmpeg -i in out.mp4") from exc
    finally:
        reader.close()
    if n_source == 0:
        raise VideoError("video has no frames", path, fix="use a non-empty video")
    if src_fps <= 0:
        raise VideoError("video has no frame rate", path, fix="re-encode it with a frame rate (ffmpeg -r 30)")
    if min(width, height) < MIN_SIDE:
        raise VideoError(
            f"video is {width}x{height}, too small for face landmarks (need >= {MIN_SIDE} px per side)",
            path,
            fix="use a higher-resolution video",
        )
    indices, out_fps = select_indices(n_source, src_fps, fps, max_frames)
    return VideoInfo(path, width, height, src_fps, n_source, indices, out_fps)


def iter_frames(info: VideoInfo) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (position in the kept list, RGB uint8 frame) for the kept frames, decoding sequentially."""
    wanted = {src: pos for pos, src in enumerate(info.indices)}
    last = info.indices[-1]
    reader = _reader(info.path)
    src = -1
    try:
        for src, frame in enumerate(reader):
            if src in wanted:
                yield wanted[src], np.ascontiguousarray(frame[..., :3])
            if src >= last:
                return
    except (OSError, RuntimeError, IndexError) as exc:
        raise VideoError(f"decoding failed at frame {src + 1} ({exc})", info.path, fix="re-encode the video") from exc
    finally:
        reader.close()
    raise VideoError(f"video ended before frame {last}", info.path, fix="re-encode the video")
