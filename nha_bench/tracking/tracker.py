"""``track_subject``: fit the head model to a subject's frames and write ``tracking.npz``.

Face2Face-style (the tracker NHA starts from): keyframes fix shape, albedo and a first lighting
jointly; then every frame in index order is tracked from the previous one (expression, global and
jaw rotation, translation, SH lighting) with a temporal smoothness term. A killed run resumes
from ``.tracking_partial.npz``.

tracking.npz keys: shape (S,), expr (N, E), pose (N, 15), translation (N, 3) metres (camera frame,
see :mod:`nha_bench.tracking.camera`), model (str), albedo (V, 3) per-vertex RGB in the images'
colour space (the keyframes' mean skin colour without the photometric term), sh (N, 9, 3) SH lighting
(camera-frame normals, :mod:`nha_bench.tracking.shading`; ambient 1 without the photometric term),
landmark_error_px (N,) mean reprojection error of the visible landmarks, keyframes (K,),
tracker_config (JSON str).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from nha_bench.datasets.format import Subject, SubjectWriter
from nha_bench.errors import DatasetError, ExistsError
from nha_bench.head import load_head_model
from nha_bench.tracking.config import TrackerConfig
from nha_bench.tracking.fit import fit_keyframes, landmark_error_px, track_frame
from nha_bench.tracking.objective import REFERENCE_SIDE, Energy, Targets, Variables

PARTIAL = ".tracking_partial"
SKIN_LABEL = 1  # parsing label of skin + neck (nha_bench.datasets.format.LABELS)


def load_landmarks(subject: Subject) -> np.ndarray:
    """(N, 68, 3) landmarks, checked; errors name landmarks.npy."""
    path = subject.root / "landmarks.npy"
    lm = subject.landmarks()
    n = subject.meta.n_frames
    if lm.shape != (n, 68, 3):
        raise DatasetError(f"landmarks have shape {lm.shape}, expected ({n}, 68, 3)", path,
                           fix="re-run landmark detection for every frame (x, y in pixels, visibility)")
    if not np.isfinite(lm).all():
        raise DatasetError("landmarks contain NaN or inf", path, fix="set undetected landmarks' visibility to 0 instead")
    return lm.astype(np.float32)


def select_keyframes(landmarks: np.ndarray, candidates: list[int], n: int) -> list[int]:
    """``n`` diverse frames: start at the frame nearest the mean normalised landmark layout, then
    add the farthest one each time (pose and expression diversity, as Face2Face's keyframes)."""
    xy = landmarks[candidates, :, :2].astype(np.float64)
    xy = xy - xy.mean(1, keepdims=True)
    xy /= np.sqrt((xy**2).sum((1, 2), keepdims=True)).clip(1e-6)
    flat = xy.reshape(len(candidates), -1)
    chosen = [int(np.argmin(((flat - flat.mean(0)) ** 2).sum(1)))]
    dist = ((flat - flat[chosen[0]]) ** 2).sum(1)
    while len(chosen) < min(n, len(candidates)):
        chosen.append(int(np.argmax(dist)))
        dist = np.minimum(dist, ((flat - flat[chosen[-1]]) ** 2).sum(1))
    return sorted(candidates[i] for i in chosen)


class FrameLoader:
    """Builds :class:`Targets` for frames of a subject (images at the render scale)."""

    def __init__(self, subject: Subject, landmarks: np.ndarray, config: TrackerConfig, device: torch.device | str):
        self.subject, self.config, self.device = subject, config, device
        self.landmarks = torch.as_tensor(landmarks, device=device)
        H, W = subject.meta.height, subject.meta.width
        self.K = torch.as_tensor(subject.meta.K, device=device)
        s = config.render_scale
        self.size = (max(1, round(H * s)), max(1, round(W * s)))
        scale = torch.tensor([self.size[1] / W, self.size[0] / H, 1.0], device=device)
        self.K_small = self.K * scale[:, None]
        self.landmark_scale = REFERENCE_SIDE / max(H, W)
        self.use_images = config.photometric or config.w_silhouette > 0
        self.has_parsing = subject.has("parsing")

    def _down(self, images: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(images, dtype=torch.float32, device=self.device)
        x = x[..., None] if x.ndim == 3 else x
        return F.interpolate(x.permute(0, 3, 1, 2), size=self.size, mode="area").permute(0, 2, 3, 1)

    def __call__(self, indices: list[int], images: bool | None = None) -> Targets:
        """Targets of ``indices``; images are loaded when a term needs them or ``images`` is True."""
        t = Targets(self.landmarks[indices], self.K, self.K_small, self.size, landmark_scale=self.landmark_scale)
        if not (self.use_images if images is None else images):
            return t
        mask = np.stack([self.subject.mask(i) for i in indices])
        t.fg = self._down(mask.astype(np.float32))[..., 0]
        if self.config.photometric or images:
            t.rgb = self._down(np.stack([self.subject.rgb(i) for i in indices]))
            region = mask
            if self.has_parsing:
                region = region & (np.stack([self.subject.parsing(i) for i in indices]) == SKIN_LABEL)
            # only pixels entirely inside the region, so no background bleeds into the colours
            t.region = self._down(region.astype(np.float32))[..., 0] > 0.999
        return t


def _fingerprint(head_model: str, config: TrackerConfig, subject: Subject) -> str:
    return json.dumps({"model": head_model, "config": config.as_dict(), "n_frames": subject.meta.n_frames}, sort_keys=True)


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(), TextColumn("{task.fields[info]}"), disable=not enabled,
    )


def track_subject(
    subject_root: str | Path,
    head_model: str = "ict",
    device: str = "cpu",
    config: TrackerConfig | None = None,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Track every frame of a subject and write ``tracking.npz`` (keys in the module docstring).

    Raises ExistsError if it exists and ``force`` is False; DatasetError for missing/corrupt inputs.
    Resumes a killed run from ``.tracking_partial.npz`` when model and config are unchanged.
    """
    subject = Subject(subject_root)
    out = subject.root / "tracking.npz"
    if out.exists() and not force:
        raise ExistsError("tracking.npz already exists", out, fix="pass force=True (--force) to re-track")
    config = config or TrackerConfig.preset("full")
    torch.manual_seed(config.seed)
    landmarks = load_landmarks(subject)
    n = subject.meta.n_frames
    model = load_head_model(head_model).to(device)
    energy = Energy(model, config)
    loader = FrameLoader(subject, landmarks, config, device)
    writer = SubjectWriter(subject.root, force=True)  # only for its atomic array writes
    fingerprint = _fingerprint(head_model, config, subject)
    partial = subject.root / f"{PARTIAL}.npz"
    state = _load_partial(partial, fingerprint) if not force else None

    with _progress(progress) as bar:
        if state is None:
            candidates = subject.split("train") if "train" in subject.meta.splits else list(range(n))
            keyframes = select_keyframes(landmarks, candidates, config.n_keyframes)
            task = bar.add_task("keyframes", total=1, info=f"{len(keyframes)} frames")
            kvar = Variables.initial(model, len(keyframes), device)
            fit_keyframes(energy, kvar, loader(keyframes, images=True))  # images also give the albedo
            err = landmark_error_px(energy, kvar, loader(keyframes))
            bar.update(task, advance=1, info=f"landmarks {float(err.mean()):.2f} px")
            state = {
                "keyframes": np.asarray(keyframes), "shape": kvar.shape.cpu(), "albedo": kvar.albedo.cpu(), "done": 0,
                "expr": torch.zeros(n, model.n_expr), "rotation": torch.zeros(n, 3), "jaw": torch.zeros(n, 3),
                "translation": torch.zeros(n, 3), "sh": kvar.sh[:1].cpu().expand(n, -1, -1).clone(),
                "error": torch.zeros(n),
            }
            for j, k in enumerate(keyframes):  # warm start for the first frame: nearest keyframe
                for name in ("expr", "rotation", "jaw", "translation", "sh"):
                    state[name][k] = getattr(kvar, name)[j].cpu()
            _save_partial(writer, state, fingerprint)
        _track_sequence(energy, loader, state, n, bar, writer, fingerprint)

    pose = torch.zeros(n, 15)
    pose[:, 0:3], pose[:, 6] = state["rotation"], state["jaw"][:, 0].clamp_min(0.0)
    arrays = {
        "shape": _np(state["shape"][0]), "expr": _np(state["expr"]), "pose": _np(pose),
        "translation": _np(state["translation"]), "model": np.asarray(head_model), "albedo": _np(state["albedo"]),
        "sh": _np(state["sh"]), "landmark_error_px": _np(state["error"]), "keyframes": np.asarray(state["keyframes"]),
        "tracker_config": np.asarray(json.dumps(config.as_dict())),
    }
    writer.write_arrays("tracking", arrays)
    partial.unlink(missing_ok=True)
    return out


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def _track_sequence(
    energy: Energy, loader: FrameLoader, state: dict, n: int, bar: Progress, writer: SubjectWriter, fingerprint: str
) -> None:
    """Sequential stage from frame ``state['done']`` on, checkpointing every few frames."""
    device = loader.device
    per = ("expr", "rotation", "jaw", "translation", "sh")
    task = bar.add_task("frames", total=n, completed=state["done"], info="")
    meta = loader.subject.meta
    reinit_px = energy.config.reinit_fraction * max(meta.height, meta.width)
    previous = None
    for i in range(state["done"], n):
        if i == 0:
            var = _var_from_state(state, int(np.min(state["keyframes"])), device)
        else:
            var = _var_from_state(state, i - 1, device)
            if previous is None:  # resumed: rebuild the previous frame's vertices
                with torch.no_grad():
                    previous = energy.landmarks_camera(var)
        var.shape, var.albedo = state["shape"].to(device), state["albedo"].to(device)
        targets = loader([i])
        track_frame(energy, var, targets, previous, reinit_px=reinit_px)
        err = landmark_error_px(energy, var, targets)
        with torch.no_grad():
            previous = energy.landmarks_camera(var)
        for name in per:
            state[name][i] = getattr(var, name)[0].detach().cpu()
        state["error"][i] = err[0].cpu()
        state["done"] = i + 1
        bar.update(task, advance=1, info=f"landmarks {float(err[0]):.2f} px")
        if state["done"] % energy.config.checkpoint_every == 0 and state["done"] < n:
            _save_partial(writer, state, fingerprint)


def _var_from_state(state: dict, i: int, device: torch.device | str) -> Variables:
    return Variables(
        state["shape"].to(device), state["albedo"].to(device),
        *(state[k][i : i + 1].clone().to(device) for k in ("expr", "rotation", "jaw", "translation", "sh")),
    )


_STATE_KEYS = ("shape", "albedo", "expr", "rotation", "jaw", "translation", "sh", "error")


def _save_partial(writer: SubjectWriter, state: dict, fingerprint: str) -> None:
    arrays = {k: _np(state[k]) for k in _STATE_KEYS}
    arrays.update(keyframes=np.asarray(state["keyframes"]), done=np.asarray(state["done"]),
                  fingerprint=np.asarray(fingerprint))
    writer.write_arrays(PARTIAL, arrays)


def _load_partial(path: Path, fingerprint: str) -> dict | None:
    """The saved state of an interrupted run with the same settings, else None."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as d:
            if str(d["fingerprint"]) != fingerprint:
                return None
            state = {k: torch.as_tensor(d[k]) for k in _STATE_KEYS}
            state.update(keyframes=d["keyframes"], done=int(d["done"]))
    except (OSError, ValueError, KeyError):
        return None  # unreadable checkpoint: start over
    return state
