"""`nha-bench data prepare VIDEO`: a portrait video -> a subject folder (nha_bench.datasets.format).

Stages, each resumable: analyse (face mesh + 68 landmarks on the source frames, cached in
SUBJECT/.prepare/analysis.npz) -> crop window -> frames (rgb/mask/parsing PNGs, skipped when
already written) -> landmarks.npy -> splits -> meta.json (written last: marks the subject
complete) -> tracking.npz (head tracker, optional).
"""

from __future__ import annotations

import importlib
import json
import shutil
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from nha_bench.datasets.format import Subject, SubjectMeta, SubjectWriter, atomic_write_bytes
from nha_bench.datasets.video.crop import fit_window, smooth_head_track, source_intrinsics
from nha_bench.datasets.video.decode import VideoInfo, iter_frames, probe
from nha_bench.datasets.video.errors import VideoError, VideoWarning, frame_ranges
from nha_bench.datasets.video.landmarks import LANDMARK_MODELS, MESH_POINTS, FaceMesh, landmark_model
from nha_bench.datasets.video.parsing import FALLBACK_ID, fallback_parsing
from nha_bench.datasets.video.segment import SelfieSegmenter
from nha_bench.datasets.video.split import make_splits, yaw_proxy
from nha_bench.errors import ExistsError, UnavailableError

WORK = ".prepare"
OUTPUTS = ("rgb", "mask", "parsing", "normal", "landmarks.npy", "tracking.npz", "meta.json", WORK)
FIELDS = ("rgb", "mask", "parsing")
MIN_CROP_RES = 64
console = Console(stderr=True)


@contextmanager
def _progress(description: str, total: int) -> Iterator[Callable[[], None]]:
    with Progress(
        TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(), console=console, transient=False,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda: bar.advance(task)


def _warn(notes: list[str], message: str) -> None:
    notes.append(message)
    warnings.warn(message, VideoWarning, stacklevel=3)


def tracker() -> Callable[..., Path]:
    """``nha_bench.tracking.track_subject``, or UnavailableError while the tracker is not there."""
    try:
        module = importlib.import_module("nha_bench.tracking")
        return getattr(module, "track_subject")
    except Exception as exc:  # missing module/attribute or a tracker that fails to import
        raise UnavailableError(
            f"the head tracker nha_bench.tracking.track_subject is not available ({type(exc).__name__}: {exc})",
            fix="prepare without tracking (--no-track / track=False) and track the subject later",
        ) from exc


def _analyse(info: VideoInfo, landmarks: str, path: Path) -> dict[str, np.ndarray]:
    """Face mesh of the main face and its 68 landmarks per kept frame (source pixels, NaN = no face)."""
    if path.is_file():
        with np.load(path) as cached:
            return {k: cached[k] for k in cached.files}
    n = len(info.indices)
    mesh = np.full((n, MESH_POINTS, 3), np.nan, np.float32)
    lm68 = np.full((n, 68, 2), np.nan, np.float32)
    n_faces = np.zeros(n, np.int16)
    face_mesh, lm_model = FaceMesh(), landmark_model(landmarks)
    prev: np.ndarray | None = None
    try:
        with _progress("faces", n) as advance:
            for pos, frame in iter_frames(info):
                faces = face_mesh(frame)
                n_faces[pos] = len(faces)
                if faces:
                    size = [np.ptp(f[:, 0]) * np.ptp(f[:, 1]) for f in faces]
                    if prev is None:  # first face: the largest
                        pick = int(np.argmax(size))
                    else:  # then the one closest to the previous main face (consistent identity)
                        pick = int(np.argmin([np.linalg.norm(f[:, :2].mean(0) - prev) for f in faces]))
                    mesh[pos] = faces[pick]
                    prev = faces[pick][:, :2].mean(0)
                    lm68[pos] = lm_model(frame, faces[pick])
                advance()
    finally:
        face_mesh.close()
    arrays = {"mesh": mesh, "lm68": lm68, "n_faces": n_faces}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(".analysis.tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return arrays


def _check_faces(info: VideoInfo, a: dict[str, np.ndarray], notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame flags (face found, face partly outside the frame); raises when no frame has a
    face, warns for the rest."""
    valid = np.isfinite(a["mesh"][:, 0, 0])
    src = np.asarray(info.indices)
    if not valid.any():
        raise VideoError(
            f"no face found in any of the {len(valid)} frames", info.path,
            fix="use a video showing one face, frontal to three-quarter view, at least ~64 px wide",
        )
    if not valid.all():
        _warn(notes, f"{info.path.name}: no face in source frames {frame_ranges(src[~valid].tolist())}; they are left out of the splits")
    multi = a["n_faces"] > 1
    if multi.any():
        _warn(notes, f"{info.path.name}: several faces in source frames {frame_ranges(src[multi].tolist())}; kept the largest/most consistent one")
    xy = a["mesh"][..., :2]
    with np.errstate(invalid="ignore"):
        out = valid & ((xy < 0).any(axis=(1, 2)) | (xy[..., 0] > info.width).any(axis=1) | (xy[..., 1] > info.height).any(axis=1))
    if out.any():
        _warn(notes, f"{info.path.name}: the face is partly outside the frame in source frames {frame_ranges(src[out].tolist())}")
    return valid, out


def _config(video: Path, res: int, fps: float | None, max_frames: int | None, landmarks: str, parsing_weights: Path | None, focal: float | None) -> dict[str, Any]:
    stat = video.stat()
    return {
        "video": str(video.resolve()), "video_bytes": stat.st_size, "res": res, "fps": fps, "max_frames": max_frames,
        "landmarks": landmarks, "parsing_weights": str(parsing_weights.resolve()) if parsing_weights else None, "focal": focal,
    }


def _clean(out: Path) -> None:
    for name in OUTPUTS:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)


def _license_for(video: Path) -> str:
    source = video.parent / "SOURCE.md"
    return f"see {source}" if source.is_file() else "unknown: the licence of the input video applies"


def _frames(info, window, analysis, valid, writer, parser, n_done: Iterable[int]) -> None:
    todo = set(range(len(info.indices))) - set(n_done)
    if not todo:
        return
    segmenter = SelfieSegmenter()
    try:
        with _progress("frames", len(info.indices)) as advance:
            for _ in range(len(info.indices) - len(todo)):
                advance()
            for pos, frame in iter_frames(info):
                if pos not in todo:
                    continue
                rgb = window.apply(frame)
                mask = segmenter(rgb)
                if parser is not None:
                    parsing = parser(rgb)
                    parsing[~mask] = 0
                else:
                    mesh = window.points(analysis["mesh"][pos]) if valid[pos] else None
                    parsing = fallback_parsing(rgb, mask, mesh)
                writer.write_frame(pos, rgb=rgb, mask=mask, parsing=parsing)
                advance()
    finally:
        segmenter.close()


def _run_tracking(out: Path, options: dict[str, Any]) -> None:
    started = time.perf_counter()
    tracker()(out, **options)
    head_model = str(Subject(out).tracking().get("model", "unknown head model"))
    meta_path = out / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["models"]["tracking"] = f"nha_bench.tracking.track_subject ({head_model})"
    meta["extra"].setdefault("timing_s", {})["tracking"] = round(time.perf_counter() - started, 1)
    atomic_write_bytes(meta_path, json.dumps(meta, indent=1).encode())


def prepare(
    video: Path,
    out: Path,
    res: int = 512,
    fps: float | None = None,
    split: str = "halves",
    landmarks: str = "mediapipe",
    parsing_weights: Path | None = None,
    normal_weights: Path | None = None,
    track: bool = True,
    force: bool = False,
    max_frames: int | None = None,
    focal: float | None = None,
    track_options: dict[str, Any] | None = None,
) -> Path:
    """Turn a portrait video into a subject folder ``out`` and return it.

    ``res``: output side in pixels; ``fps``: subsample to this rate; ``split``: "halves" or
    "ratio:R"; ``landmarks``: "mediapipe" or "dlib"; ``parsing_weights``: BiSeNet 79999_iter.pth
    (else the fallback parsing); ``normal_weights``: not supported (raises UnavailableError);
    ``track``: run the head tracker afterwards; ``force``: overwrite an existing subject;
    ``max_frames``: keep only the first frames; ``focal``: focal length of the source video in
    pixels (default 1.5 * max(W, H)); ``track_options``: keyword arguments for
    ``nha_bench.tracking.track_subject`` (e.g. device, config). A killed run resumes when called
    again with the same settings.
    """
    video, out = Path(video), Path(out)
    if normal_weights is not None:
        raise UnavailableError(
            "pseudo-GT normals need the network of Abrevaya et al. 2020 (Cross-modal deep face normals), "
            "which nha-bench does not implement", normal_weights,
            fix="omit --normal-weights: the subject then has no 'normal' field and methods skip the normal loss",
        )
    if res < MIN_CROP_RES:
        raise VideoError(f"res must be >= {MIN_CROP_RES}, got {res}", fix="pass e.g. --res 512")
    if landmarks not in LANDMARK_MODELS:
        raise UnavailableError(f"unknown landmark model {landmarks!r}", fix=f"use one of {sorted(LANDMARK_MODELS)}")
    if track:
        tracker()  # fail before the long stages
    info = probe(video, fps, max_frames)  # before touching ``out``: a bad video never costs an old subject
    parser = None
    if parsing_weights is not None:
        from nha_bench.datasets.video.bisenet import BiSeNetParser

        parser = BiSeNetParser(parsing_weights)
    config = _config(video, res, fps, max_frames, landmarks, parsing_weights, focal)
    config_path = out / WORK / "config.json"
    if force:
        _clean(out)
    elif (out / "meta.json").exists():
        stored = json.loads(config_path.read_text()) if config_path.is_file() else None
        if track and stored == config and not (out / "tracking.npz").exists():
            _run_tracking(out, track_options or {})  # resume: only the tracking was missing
            return out
        raise ExistsError("subject already exists", out, fix="pass --force to overwrite it")
    elif config_path.is_file() and json.loads(config_path.read_text()) != config:
        raise ExistsError(
            "an unfinished subject prepared with other settings is in this folder", out,
            fix="re-run with the same settings to resume, or pass --force to start over",
        )
    writer = SubjectWriter(out, force=force)
    atomic_write_bytes(config_path, json.dumps(config, indent=1).encode())
    notes: list[str] = []
    timing: dict[str, float] = {}

    t = time.perf_counter()
    analysis = _analyse(info, landmarks, out / WORK / "analysis.npz")
    valid, out_of_frame = _check_faces(info, analysis, notes)
    timing["analyse"] = time.perf_counter() - t

    mesh = analysis["mesh"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows of frames without a face
        boxes = np.concatenate([np.nanmin(mesh[..., :2], axis=1), np.nanmax(mesh[..., :2], axis=1)], axis=1)
    fit = fit_window(smooth_head_track(boxes), boxes, info.width, info.height, res)
    window = fit.window
    src = np.asarray(info.indices)
    if fit.clamped:
        notes.append(f"head box with hair margin exceeds the frame; crop = a {window.side}px square (the largest that fits)")
    cut = sorted(set(fit.outside) - set(np.flatnonzero(out_of_frame).tolist()))  # not reported above
    if cut:
        _warn(notes, f"{video.name}: the face leaves the fixed {window.side}px crop window in source frames "
              f"{frame_ranges(src[cut].tolist())}")
    face_side = float(np.nanmedian(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])))
    if face_side * window.scale < res / 6:
        _warn(notes, f"{video.name}: the face covers only ~{face_side * window.scale:.0f}px of the {res}px crop")
    if window.scale > 2.0:
        _warn(notes, f"{video.name}: the {window.side}px crop is upsampled {window.scale:.1f}x to {res}px; details will be blurry")

    t = time.perf_counter()
    done = [i for i in range(len(info.indices)) if writer.has_frame(i, FIELDS)]
    _frames(info, window, analysis, valid, writer, parser, done)
    timing["frames"] = time.perf_counter() - t

    lm = window.points(analysis["lm68"])
    lm = np.where(valid[:, None, None], lm, 0.0)
    writer.write_array("landmarks", np.concatenate([lm, valid[:, None, None].repeat(68, 1).astype(np.float32)], axis=2).astype(np.float32))
    splits, split_notes = make_splits(yaw_proxy(analysis["lm68"]), valid, split)
    K = window.intrinsics(source_intrinsics(info.width, info.height, focal))
    meta = SubjectMeta(
        subject=out.name,
        dataset="real",
        fps=float(info.out_fps),
        width=res,
        height=res,
        intrinsics=K.tolist(),
        n_frames=len(info.indices),
        splits=splits,
        source=f"video {video.name} ({info.width}x{info.height}, {info.fps:g} fps, {info.n_source} frames)",
        license=_license_for(video),
        fields=list(FIELDS),
        models={
            "face_mesh": FaceMesh.model_id,
            "landmarks": LANDMARK_MODELS[landmarks].model_id,
            "mask": SelfieSegmenter.model_id,
            "parsing": parser.model_id if parser else FALLBACK_ID,
        },
        extra={
            "source_video": str(video.resolve()),
            "source_frames": [int(i) for i in info.indices],
            "crop": asdict(window),
            "focal_assumed": focal is None,
            "source_intrinsics": source_intrinsics(info.width, info.height, focal).tolist(),
            "split_rule": split,
            "split_notes": split_notes,
            "frames_without_face": [int(i) for i in np.flatnonzero(~valid)],
            "warnings": notes,
            "timing_s": {k: round(v, 1) for k, v in timing.items()},
        },
    )
    writer.finish(meta)
    if track:
        _run_tracking(out, track_options or {})
    return Subject(out).root
