"""Tracker settings and their presets (``tiny``: CPU, seconds; ``full``: GPU quality)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from nha_bench.errors import NhaBenchError


@dataclass(frozen=True)
class TrackerConfig:
    """Every knob of the tracker. Weights multiply losses measured in pixels of a 512-px image
    (landmarks), colour units in [0, 1] (photometric) and millimetres (temporal)."""

    # keyframe stage: shape, albedo and lighting fitted jointly over a few frames
    n_keyframes: int = 8
    rigid_iters: int = 60  # rotation + translation only, landmarks only, per yaw hypothesis (L-BFGS)
    keyframe_landmark_iters: int = 300  # + shape, expression, jaw (L-BFGS)
    keyframe_photo_iters: int = 200  # + albedo, SH lighting, photometric term (Adam), twice
    # sequential stage: expression, pose, translation, lighting per frame (warm start)
    frame_rigid_iters: int = 10  # rotation + translation on landmarks first (L-BFGS)
    frame_iters: int = 30  # landmarks + temporal (L-BFGS)
    frame_photo_iters: int = 30  # + photometric and lighting (Adam)
    reinit_fraction: float = 0.04  # re-initialise the rigid pose when landmarks are off by this x image size
    lr: float = 0.01  # Adam, photometric stages
    photo_geometry_lr: float = 0.1  # geometry step sizes x this in the photometric stages
    lr_translation: float = 0.003
    lr_albedo: float = 0.02
    # loss weights
    w_landmark: float = 1.0
    w_contour: float = 0.3  # relative weight of jaw-line landmarks 0..16 (view-dependent)
    w_photo: float = 20.0
    w_shape_reg: float = 0.002
    w_expr_reg: float = 0.002
    w_jaw_reg: float = 5.0
    w_temporal: float = 0.001  # per mm^2 of 3D landmark motion between frames
    w_albedo_smooth: float = 1e3
    w_silhouette: float = 0.0  # one-sided: rendered head outside the foreground mask
    photometric: bool = True
    render_scale: float = 0.5  # photometric term rendered at this fraction of the resolution
    yaw_hypotheses_deg: tuple[float, ...] = (-45.0, 0.0, 45.0)
    checkpoint_every: int = 20  # frames between resumable checkpoints
    seed: int = 0

    @classmethod
    def preset(cls, name: str) -> "TrackerConfig":
        """The ``tiny`` or ``full`` preset."""
        if name not in PRESETS:
            raise NhaBenchError(f"unknown tracker preset {name!r}", fix=f"use one of {sorted(PRESETS)}")
        return PRESETS[name]

    def with_(self, **changes: object) -> "TrackerConfig":
        """A copy with some fields changed."""
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, TrackerConfig] = {
    "tiny": TrackerConfig(
        n_keyframes=2,
        rigid_iters=40,
        keyframe_landmark_iters=150,
        keyframe_photo_iters=20,
        frame_rigid_iters=5,
        frame_iters=20,
        frame_photo_iters=5,
        render_scale=0.5,
        yaw_hypotheses_deg=(0.0,),
        checkpoint_every=5,
        photometric=False,  # landmarks only: seconds on CPU (the photometric stages need a GPU to be cheap)
    ),
    "full": TrackerConfig(),
}
