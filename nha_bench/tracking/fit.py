"""Optimisation stages of the tracker: rigid initialisation, keyframe fitting, per-frame tracking."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from nha_bench.errors import NhaBenchError
from nha_bench.head.base import HeadParams
from nha_bench.tracking.camera import FLIP
from nha_bench.tracking.objective import N_CONTOUR, Energy, Targets, Variables

PER_FRAME = ("expr", "rotation", "jaw", "translation", "sh")


class TrackingError(NhaBenchError):
    """The optimisation diverged (NaN/inf energy)."""


def _learning_rates(energy: Energy, names: tuple[str, ...]) -> list[float]:
    """Adam step sizes; geometry moves slowly (``photo_geometry_lr``) next to the appearance."""
    c = energy.config
    geometry = {"translation": c.lr_translation * c.photo_geometry_lr}
    appearance = {"albedo": c.lr_albedo, "sh": 3 * c.lr}
    return [appearance.get(n, geometry.get(n, c.lr * c.photo_geometry_lr)) for n in names]


def optimise(
    energy: Energy,
    var: Variables,
    targets: Targets,
    names: tuple[str, ...],
    iters: int,
    photometric: bool,
    previous: Tensor | None = None,
) -> dict[str, float]:
    """Minimise the energy over the variables ``names`` (in place); returns the last terms.

    Smooth landmark-only problems use L-BFGS (converges in a few dozen steps, like Face2Face's
    Gauss-Newton); with the photometric term (piecewise smooth through rasterization) Adam.
    """
    leaves = []
    for name in names:
        leaf = getattr(var, name).detach().clone().requires_grad_(True)
        setattr(var, name, leaf)
        leaves.append(leaf)
    last: dict[str, Tensor] = {}

    def closure() -> Tensor:
        opt.zero_grad(set_to_none=True)
        terms = energy(var, targets, photometric, previous, albedo_prior="albedo" in names)
        total = torch.stack(list(terms.values())).sum()
        if not torch.isfinite(total):
            detail = ", ".join(f"{k}={float(v):.4g}" for k, v in terms.items())
            raise TrackingError(f"tracking energy became {float(total)} ({detail})",
                                fix="check the landmarks and intrinsics of this subject, or lower the learning rates")
        total.backward()
        last.update(terms)
        return total

    if iters > 0 and not photometric:
        opt = torch.optim.LBFGS(leaves, lr=1.0, max_iter=iters, history_size=20, line_search_fn="strong_wolfe",
                                tolerance_grad=1e-9, tolerance_change=1e-12)
        opt.step(closure)
    elif iters > 0:
        lrs = _learning_rates(energy, names)
        opt = torch.optim.Adam([{"params": [leaf], "lr": lr} for lr, leaf in zip(lrs, leaves)])
        for _ in range(iters):
            opt.step(closure)
    for name in names:
        setattr(var, name, getattr(var, name).detach())
    return {k: float(v.detach()) for k, v in last.items()}


def landmark_error_px(energy: Energy, var: Variables, targets: Targets) -> Tensor:
    """Per-frame mean pixel distance (B,) between projected and target landmarks (visible ones)."""
    with torch.no_grad():
        pred = energy.landmarks_px(var, targets.K)
        d = (pred - targets.landmarks[..., :2]).norm(dim=-1)
        w = (targets.landmarks[..., 2] > 0.5).float()
        return (d * w).sum(-1) / w.sum(-1).clamp_min(1.0)


def _initial_translation(energy: Energy, var: Variables, t: Targets) -> Tensor:
    """Translation putting the neutral landmarks' centroid on the 2D centroid at the depth that
    matches their spread (weak perspective)."""
    model = energy.model
    with torch.no_grad():
        params = HeadParams.zeros(model, 1, var.shape.device)
        params.shape = var.shape
        lm = model.landmarks(model(params))[0, N_CONTOUR:]  # (51, 3) model frame, inner face
        target = t.landmarks[:, N_CONTOUR:]
        w = (target[..., 2] > 0.5).float()[..., None]
        n = w.sum(1).clamp_min(1.0)
        c_px = (target[..., :2] * w).sum(1) / n  # (B, 2)
        spread_px = torch.sqrt((((target[..., :2] - c_px[:, None]) ** 2).sum(-1, keepdim=True) * w).sum(1) / n)[:, 0]
        c_m = lm.mean(0)
        spread_m = torch.sqrt(((lm[:, :2] - c_m[:2]) ** 2).sum(-1).mean())
        f = 0.5 * (t.K[0, 0] + t.K[1, 1])
        z = f * spread_m / spread_px.clamp_min(1.0)
        flip = c_m.new_tensor(FLIP)
        centre = torch.stack([(c_px[:, 0] - t.K[0, 2]) / t.K[0, 0] * z, (c_px[:, 1] - t.K[1, 2]) / t.K[1, 1] * z, z], -1)
        return centre - flip * c_m


def init_rigid(energy: Energy, var: Variables, targets: Targets) -> None:
    """Global rotation and translation from landmarks alone, trying each yaw hypothesis and keeping
    the best per frame (in place)."""
    c = energy.config
    base_t = _initial_translation(energy, var, targets)
    best_err, best_rot, best_t = None, None, None
    for yaw in c.yaw_hypotheses_deg:
        trial = var.frames(slice(None))
        trial.rotation = torch.zeros_like(var.rotation)
        trial.rotation[:, 1] = math.radians(yaw)
        trial.translation = base_t.clone()
        optimise(energy, trial, targets, ("rotation", "translation"), c.rigid_iters, photometric=False)
        err = landmark_error_px(energy, trial, targets)
        if best_err is None:
            best_err, best_rot, best_t = err, trial.rotation, trial.translation
        else:
            better = err < best_err
            best_err = torch.where(better, err, best_err)
            best_rot = torch.where(better[:, None], trial.rotation, best_rot)
            best_t = torch.where(better[:, None], trial.translation, best_t)
    var.rotation, var.translation = best_rot, best_t


def fit_keyframes(energy: Energy, var: Variables, targets: Targets) -> dict[str, float]:
    """Shape (and, with the photometric term, albedo and lighting) jointly over the keyframes."""
    c = energy.config
    init_rigid(energy, var, targets)
    geometry = ("shape",) + PER_FRAME[:-1]
    terms = optimise(energy, var, targets, geometry, c.keyframe_landmark_iters, photometric=False)
    if targets.rgb is not None:
        _init_albedo(energy, var, targets)
    if c.photometric and targets.rgb is not None and c.keyframe_photo_iters > 0:
        # appearance first with the geometry frozen, then everything jointly
        optimise(energy, var, targets, ("albedo", "sh"), c.keyframe_photo_iters, photometric=True)
        terms = optimise(energy, var, targets, geometry + ("albedo", "sh"), c.keyframe_photo_iters, photometric=True)
    return terms


def _init_albedo(energy: Energy, var: Variables, t: Targets) -> None:
    """Constant albedo: the mean colour of the photometric region."""
    if t.region is not None and bool(t.region.any()):
        var.albedo = t.rgb[t.region].mean(0).expand_as(var.albedo).clone()


def track_frame(
    energy: Energy, var: Variables, targets: Targets, previous: Tensor | None, reinit_px: float = math.inf
) -> dict[str, float]:
    """One frame, warm-started from ``var`` (in place): expression, pose, translation on landmarks
    (L-BFGS), then with the photometric term and the lighting (Adam).

    If the landmarks are still more than ``reinit_px`` off after the rigid pre-alignment (a cut or a
    jump between split segments), the rigid pose is re-initialised from scratch and the temporal
    term dropped for this frame.
    """
    c = energy.config
    # rigid pre-alignment on landmarks catches fast head motion before the full warm-started fit
    optimise(energy, var, targets, ("rotation", "translation"), c.frame_rigid_iters, photometric=False)
    err = landmark_error_px(energy, var, targets)
    if float(err.max()) > reinit_px:
        trial = var.frames(slice(None))
        init_rigid(energy, trial, targets)
        if float(landmark_error_px(energy, trial, targets).max()) < float(err.max()):
            var.rotation, var.translation, previous = trial.rotation, trial.translation, None
    terms = optimise(energy, var, targets, PER_FRAME[:-1], c.frame_iters, photometric=False, previous=previous)
    if c.photometric and targets.rgb is not None and c.frame_photo_iters > 0:
        terms = optimise(energy, var, targets, PER_FRAME, c.frame_photo_iters, photometric=True, previous=previous)
    return terms
