"""NHA presets: network sizes, resolution, the three-stage schedule and the energy weights.

The ``paper`` preset follows the official NHA configuration (offset MLP 6x128, texture MLP 8x256,
32-d normal encoding, 150/50/50 epochs -> stage fractions 0.6/0.2/0.2, per-stage weights below)
with the iteration count cut to fit a few GPU minutes. ``tiny`` shrinks everything to run on a
CPU in seconds (tests, demo).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, replace

from nha_bench.errors import NhaBenchError

Stagewise = tuple[float, float, float]  # weight in stage 1 (geometry), 2 (texture), 3 (joint)


@dataclass(frozen=True)
class NhaConfig:
    """Everything that decides an NHA fit; hashed into the result record."""

    # geometry
    subdivide: bool = True  # NHA's four-way subdivision of the head mesh
    offset_layers: int = 6
    offset_width: int = 128
    # texture
    texture_layers: int = 8
    texture_width: int = 256
    normal_features: int = 32
    normal_patch: int = 7  # receptive field (n x n) of the normal-patch CNN
    n_expr_cond: int = 53  # leading expression coefficients fed to the texture MLP
    # optimisation
    train_size: int = 512  # longest image side used for training (K is scaled)
    batch_size: int = 4
    iterations: int = 3000
    stage_fractions: tuple[float, float] = (0.6, 0.2)  # stage 1 and stage 2 (rest is stage 3)
    lr_offset: float = 2e-4  # 3e-4 let G diverge more often with the Laplacian at 10 (session 8)
    # G's sine layers learn at this fraction of lr_offset (its FiLM mapping and output layer at the
    # full rate), and all of G at lr_offset_stage3_factor of it in stage 3 (official NHA: 0.2). With
    # offset_fixed_regions face + eyes: fewer divergence events of G, mean full distance 4.14 vs
    # 4.23 mm (mask alone), real L1 0.072 vs 0.075 (reports/nha/README.md, session 9)
    lr_offset_sine_factor: float = 0.3
    lr_offset_stage3_factor: float = 0.2
    lr_texture: float = 5e-4
    lr_shape: float = 1e-3
    lr_frame: float = 1e-3  # per-frame expression and pose during training
    # per-frame translation (metres). At 1e-3 the fits moved the heads 25-31 mm towards the camera
    # (a larger outline without a larger skull); 1e-5 holds them to ~2 mm (reports/nha/README.md,
    # sessions 6-8)
    lr_translation: float = 1e-5
    tf32_matmul: bool = True  # TF32 tensor-core matmuls on CUDA while fitting (rendering stays FP32)
    # energies (per stage)
    w_lmk: Stagewise = (1e-2, 1e-1, 0.0)
    w_eyelid: Stagewise = (1e-2, 1e-1, 0.0)
    w_normal: Stagewise = (1e-1, 0.0, 1e-2)
    # x10 the official 1e-1 in stages 1 and 3: the hair must grow, and at 1e-1 stage 3 shrank G again
    # (mean full distance 3.92 vs 4.14 mm, real L1 0.064 vs 0.072; reports/nha/README.md, session 9).
    # Semantic at twice the silhouette: a region other than the hair that covers hair pixels then
    # costs more than the outline gains (at equal weights the neck and ears grew into the long hair
    # of subject_f1 for free); mean full distance 3.66 vs 3.92 mm (session 10)
    w_semantic: Stagewise = (2.0, 0.0, 2.0)
    # inf: every front-facing face counts for its semantic class, occlusion ignored (SoftRas), so the
    # eyeballs behind the lids label 6-9x the eye pixels the parsing has and the far ear shows through
    # the cheek. A number of mm: a face counts for its class only where it lies at most that far
    # behind the front surface (the official code renders its labels through the z-buffer), else
    # for the "hidden" class, which only the silhouette sees. The default since session 23, 1 mm with
    # the two options below, against inf, "ears" and no exemption (seeds 0-2 of f1 and m1, seed 0
    # elsewhere; reports/nha/README.md, sessions 18-23): full head f1 5.08 vs 5.30 mm, m1 3.78 vs
    # 4.25, f2 2.11 vs 2.00, m2 2.61 vs 2.78, mean 3.39 vs 3.58; normal error 17.8 vs 18.5 deg;
    # clips d3 and d6 L1 0.059 / 0.066 vs 0.063 / 0.067; fits ~5 % slower
    semantic_depth_tolerance_mm: float = 1.0
    # semantic classes (SEMANTIC in avatar.py) whose faces skip that depth test and count for their
    # class wherever they face the camera. skin_neck: with it in the test, the neck faces behind the
    # chin or the hair counted as hidden, so the neck grew into f1's hanging hair for free (f1 5.88 mm
    # with no class exempt); the hair exempt too: f1 5.37, m1 3.85 (sessions 21-22)
    semantic_depth_exempt_classes: tuple[str, ...] = ("skin_neck",)
    # head-model region drawn as the semantic ear class: "ears" (the model's region; ICT's takes in a
    # band of scalp round the ear, ~5x the parsing's ear pixels) or "pinna" (the ear's flap; the band
    # enters only the silhouette, as the mouth does)
    semantic_ear_region: str = "pinna"
    w_silhouette: Stagewise = (1.0, 0.0, 1.0)
    w_rgb: Stagewise = (0.0, 1.0, 5e-2)
    w_perc: Stagewise = (0.0, 10.0, 5e-1)
    w_reg_shape: float = 1e-4
    w_reg_expr: float = 1e-4
    w_reg_pose: float = 1e-3
    # offset regularisers on offsets in millimetres (means over vertices of squared mm). With Adam
    # only ratios matter. A uniform growth of d mm costs ~w_offset_norm d^2 while the silhouette
    # gains ~1e-3 w_silhouette per mm of outline growth (256^2), so w_offset_norm must be << 1e-3
    # for the scalp to reach the hair; the face keeps the tracked template (x offset_face_factor)
    # and the Laplacian keeps the growth smooth. 300 (session 2, hairless ground truth) held G at
    # zero; 10 with the translations held and lr_offset 2e-4 is the best setting measured on the
    # synthetic subjects (mean full distance 4.59 vs 4.84 mm with session 8's settings;
    # reports/nha/README.md, sessions 5-8).
    w_offset_lap: float = 10.0  # Laplacian of offsets, favours smooth surfaces
    # (region, factor) pairs multiplying the Laplacian on a region's vertices (the largest factor
    # where regions overlap, 1 elsewhere); the official body-part weights stiffen the ears 500x and
    # the neck 2x against the scalp. Besides the head model's regions, "pinna" names the ear's flap
    # (the part of "ears" thinner than 2 cm, without the band of scalp ICT's "ears" takes in); pinna
    # 500 (+ neck 2) draws the whole outline in: f1 4.62 vs 5.17 mm over three seeds, but m1, m2, f2
    # and d3's L1 worse, mean 3.50 vs 3.51 mm (reports/nha/README.md, sessions 15-16)
    offset_lap_region_factors: tuple[tuple[str, float], ...] = ()
    # "vector": the Laplacian of the offset vectors (official NHA); "normal": of each offset's
    # component along the template's vertex normal (the local thickness) and of its tangential rest,
    # so a uniform outward growth is free (a vector Laplacian pays for it where the surface curves,
    # which keeps the sides' growth from carrying round the unseen back of the head). "normal" lowers
    # the synthetic full-head distance (3.06 vs 3.40 mm on the session-23 defaults; the gain is all
    # f1's, whose long hair hangs down the back) but keeps the surface out of hanging hair, which the
    # real clips' images need (d3 L1 0.076 vs 0.059; reports/nha/README.md, sessions 12-13 and 25)
    offset_lap_frame: str = "vector"
    offset_lap_tangent_factor: float = 1.0  # "normal" frame: weight of the tangential rest's Laplacian
    # mean squared length (mm^2) of the offsets' part along the template surface: keeps vertices from
    # sliding (with a weak tangential Laplacian f1's scalp and neck slid up to 197 mm into the long
    # hair's silhouette; reports/nha/README.md, session 12) while growth along the normal stays free.
    # 1e-2 with tangent factor 0.1 stops the sliding but gains nothing over "normal" alone (session 13)
    w_offset_tangent: float = 0.0
    w_offset_norm: float = 1e-5  # offset magnitude off the face (distribution term)
    offset_face_factor: float = 3e4  # magnitude weight on the face region (when not in offset_fixed_regions)
    w_offset_pose: float = 1.0  # pose consistency: offsets at the frame's pose vs neutral pose
    # head-model regions where G's offsets are zero instead of only penalised: the stiff face penalty
    # let G diverge and lose its scalp growth (reports/nha/README.md, sessions 8-9); the eyeballs
    # drift without it (the official code keeps them out of G too)
    offset_fixed_regions: tuple[str, ...] = ("face", "eyes")
    # > 0: stage 1 draws its batches evenly over bins of this many degrees of tracked head yaw instead
    # of evenly over frames (the head turn's profiles, a few frames, hold the only silhouettes of the
    # back of the head); stages 2 and 3 draw evenly over frames. 0: off (the official sampling)
    stage1_yaw_bin_deg: float = 0.0
    # test-time fit of expression and pose
    test_iterations: int = 100
    lr_test: float = 2e-3
    test_batch_size: int = 8
    # perceptual model: TorchScript ArcFace-like file; empty -> env NHA_ARCFACE -> substitute
    perceptual_model: str = ""

    def hashed_fields(self) -> dict:
        """The fields that identify the computation: all, except options added later while they
        are off (``INERT_WHEN``), so adding an option keeps earlier checkpoints and hashes valid."""
        return {k: v for k, v in asdict(self).items() if not (k in INERT_WHEN and v == INERT_WHEN[k])}

    def hash(self) -> str:
        """Short stable hash of the configuration."""
        return hashlib.sha1(json.dumps(self.hashed_fields(), sort_keys=True).encode()).hexdigest()[:10]

    def stage(self, step: int) -> int:
        """Stage (1, 2 or 3) of a 0-based training step."""
        s1 = round(self.iterations * self.stage_fractions[0])
        s2 = s1 + round(self.iterations * self.stage_fractions[1])
        return 1 if step < s1 else 2 if step < s2 else 3


INERT_WHEN: dict[str, object] = {
    "stage1_yaw_bin_deg": 0.0,
    "offset_lap_frame": "vector",
    "offset_lap_tangent_factor": 1.0,
    "w_offset_tangent": 0.0,
    "semantic_depth_tolerance_mm": math.inf,
    "semantic_ear_region": "ears",
    "semantic_depth_exempt_classes": (),
}
"""Options added after session 10's hashes (5b9f12d13b synthetic, 00cfbdf341 real) and the value
that leaves the computation as it was before them: hashed only when set otherwise (the defaults
of session 23 set the three semantic ones: 813c1e2868 synthetic, 59746874e5 real)."""

PRESETS: dict[str, NhaConfig] = {
    "paper": NhaConfig(),
    "tiny": NhaConfig(
        subdivide=False,
        offset_layers=3,
        offset_width=32,
        texture_layers=3,
        texture_width=32,
        normal_features=8,
        normal_patch=5,
        n_expr_cond=16,
        train_size=48,
        batch_size=2,
        iterations=16,
        lr_offset=1e-3,
        lr_texture=3e-3,
        lr_shape=1e-3,
        lr_frame=1e-3,
        w_rgb=(0.0, 1.0, 1.0),
        w_perc=(0.0, 1.0, 0.5),
        test_iterations=3,
        lr_test=5e-3,
        test_batch_size=4,
    ),
}


def _like(default: object, value: object) -> object:
    """``value`` in the type of the field's ``default`` (ints for float fields, lists for tuples,
    numbers inside nested lists as floats), so that equal settings hash equally however they were
    spelled (``10`` or ``10.0``)."""
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, tuple) and isinstance(value, (list, tuple)):
        if len(value) == len(default):
            return tuple(_like(d, v) for d, v in zip(default, value))
        return tuple(_like(0.0, v) if not isinstance(v, (list, tuple)) else _like((), v) for v in value)
    return value


def get_config(preset: str, **overrides: object) -> NhaConfig:
    """The preset's configuration with ``overrides`` applied (unknown keys raise)."""
    if preset not in PRESETS:
        raise NhaBenchError(f"unknown nha preset {preset!r}", fix=f"use one of {sorted(PRESETS)}")
    base = PRESETS[preset]
    try:
        return replace(base, **{key: _like(getattr(base, key, None), value) for key, value in overrides.items()})
    except TypeError as exc:
        raise NhaBenchError(f"bad nha config override ({exc})", fix="see nha_bench/methods/nha/config.py") from exc


def options_to_match(cfg: NhaConfig, stored: dict) -> dict[str, object]:
    """The options that turn ``cfg`` into the configuration whose ``hashed_fields()`` are ``stored``
    (a field left out of them is at its ``INERT_WHEN`` value), e.g. to load a checkpoint of it."""
    canonical = lambda value: json.dumps(value, sort_keys=True)  # noqa: E731  (tuples and lists alike)
    target = {**INERT_WHEN, **stored}
    return {k: v for k, v in target.items() if hasattr(cfg, k) and canonical(getattr(cfg, k)) != canonical(v)}


__all__ = ["INERT_WHEN", "NhaConfig", "PRESETS", "get_config", "options_to_match"]
