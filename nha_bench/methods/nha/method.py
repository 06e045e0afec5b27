"""Neural Head Avatars (Grassal et al., CVPR 2022) as the ``nha`` method.

Three stages as step ranges of ``train_iteration`` (paper section 3.2): 1) geometry only (offset
MLP G and shape, landmark + normal + semantic energies and regularisers), 2) texture only
(normal encoder + texture MLP T, photometric + perceptual), 3) joint. Per-frame expression, pose
and translation of the training frames are refined throughout (initialised from tracking).
``fit_frame_params`` re-optimises only expression and pose of the test frames.
"""

from __future__ import annotations

import json
import logging
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from nha_bench.datasets.format import Subject
from nha_bench.errors import NhaBenchError
from nha_bench.head.base import HeadParams, evaluation_surface
from nha_bench.mesh import Mesh
from nha_bench.method import Method, Renders, Sequence
from nha_bench.methods.nha import losses as L
from nha_bench.methods.nha.avatar import N_SEMANTIC_XOR, PARSING_OF_SEMANTIC, NhaAvatar
from nha_bench.methods.nha.config import INERT_WHEN, NhaConfig, get_config, options_to_match
from nha_bench.methods.nha.data import FrameData, load_frames, tracked_params, yaw_balanced_weights
from nha_bench.methods.nha.head_builder import build_head
from nha_bench.methods.nha.perceptual import PerceptualLoss
from nha_bench.registry import METHODS

log = logging.getLogger(__name__)
CHECKPOINT = "nha.pt"
LMK_REFERENCE_SIDE = 512.0  # landmark errors are measured in pixels of a 512-px image
SIGMA_PX = 1.0  # soft-silhouette edge width in training pixels
MAX_NONFINITE_STEPS = 20  # consecutive skipped steps (non-finite loss or gradients) before a fit gives up


@contextmanager
def matmul_precision(tf32: bool) -> Iterator[None]:
    """CUDA matmuls in TF32 (``tf32``) or full FP32 inside the block; the previous setting after."""
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved


@METHODS.register("nha")
class Nha(Method):
    """NHA: explicit head mesh (head model + pose-dependent offsets) with a neural texture."""

    name = "nha"
    display_name = "NHA"
    provides = frozenset({"rgb", "normal", "mesh"})
    presets = ("tiny", "paper")
    gpu_presets = frozenset({"paper"})
    option_fields = frozenset(f.name for f in fields(NhaConfig))
    # Table 2 ("Ours", real data, average of all subjects) and the averages of Table 1 ("Ours",
    # synthetic data, four subjects); the per-subject Table 1 values are in paper_scores_per_subject.
    paper_scores: ClassVar[dict[str, float]] = {
        "l1": 0.033,
        "msssim": 0.923,
        "lpips": 0.079,
        "csim": 0.884,
        "cpbd": 0.674,
        "normal_error": 13.5,
        "hausdorff_face": 1.175,
        "hausdorff_full": 2.8,
    }
    paper_scores_per_subject: ClassVar[dict[str, dict[str, float]]] = {
        "female_1": {"normal_error": 14.4, "hausdorff_face": 1.2, "hausdorff_full": 2.6},
        "female_2": {"normal_error": 12.2, "hausdorff_face": 0.9, "hausdorff_full": 2.5},
        "male_1": {"normal_error": 13.7, "hausdorff_face": 1.4, "hausdorff_full": 3.0},
        "male_2": {"normal_error": 13.7, "hausdorff_face": 1.2, "hausdorff_full": 3.1},
    }

    def __init__(self, **overrides: object):
        self.overrides = overrides
        self.cfg: NhaConfig | None = None
        self.notes: list[str] = []
        self._test: dict[str, object] | None = None

    @classmethod
    def fitted(cls, subject: Subject, checkpoint: str | Path, options: dict | None = None, preset: str = "paper",
               device: str = "cpu") -> Nha:
        """A fitted avatar, e.g. for analysis: set up on ``subject``'s training frames with ``preset`` and
        the fit's ``options`` (its checkpoint refuses others), then ``checkpoint`` loaded."""
        method = cls(**(options or {}))
        method.setup(Sequence(subject, "train"), preset, device, 0)
        method.load(checkpoint)
        return method

    def train_params(self, idx: Tensor) -> HeadParams:
        """The fitted identity with the expression, pose and translation of training frames ``idx``."""
        return HeadParams(self.shape.expand(len(idx), -1), self.expr[idx], self.pose[idx], self.translation[idx])

    # ----------------------------------------------------------------------------- setup
    def setup(self, train: Sequence, preset: str, device: str, seed: int) -> None:
        """Load the training frames and tracking, build the edited head model and the networks."""
        self.cfg = cfg = get_config(preset, **self.overrides)
        self.preset, self.seed = preset, seed
        self.device = torch.device(device)
        torch.manual_seed(seed)
        tracking = tracked_params(train, self.device)
        head, head_note = build_head(train.subject, tracking.shape.shape[1], tracking.expr.shape[1], cfg.subdivide)
        self.notes = [head_note]
        self.avatar = NhaAvatar(head.to(self.device), cfg).to(self.device)
        self.frames = load_frames(train, cfg.train_size, self.device)
        if self.frames.normal is None:
            self.notes.append("normal term skipped: the subject has no normal maps")
        if self.frames.parsing is None:
            self.notes.append("semantic term skipped: the subject has no parsing maps (silhouette uses the mask)")
        self.shape = nn.Parameter(tracking.shape[:1].clone())
        self.expr = nn.Parameter(tracking.expr.clone())
        self.pose = nn.Parameter(tracking.pose.clone())
        self.translation = nn.Parameter(tracking.translation.clone())
        self.stage1_frame_weights = (
            yaw_balanced_weights(tracking.pose[:, :3].cpu(), cfg.stage1_yaw_bin_deg) if cfg.stage1_yaw_bin_deg > 0 else None
        )
        self.perceptual = PerceptualLoss(cfg.perceptual_model).to(self.device)
        self.notes.append(f"perceptual loss: {self.perceptual.name}")
        for note in self.notes:
            log.info("nha: %s", note)
        sine, film_and_head = self.avatar.geometry_parameter_groups()
        self.opt_geometry = torch.optim.Adam(
            [
                {"params": sine, "lr": cfg.lr_offset * cfg.lr_offset_sine_factor},
                {"params": film_and_head, "lr": cfg.lr_offset},
                {"params": [self.shape], "lr": cfg.lr_shape},
            ]
        )
        self.opt_texture = torch.optim.Adam(self.avatar.texture_parameters(), lr=cfg.lr_texture)
        self.opt_frames = torch.optim.Adam(
            [{"params": [self.expr, self.pose], "lr": cfg.lr_frame}, {"params": [self.translation], "lr": cfg.lr_translation}]
        )
        self._test = None
        self._nonfinite_steps = 0

    def config(self) -> dict:
        """Resolved configuration plus what was substituted (hashed into result records)."""
        if self.cfg is None:
            return {}
        return {**self.cfg.hashed_fields(), "notes": list(self.notes)}

    def num_iterations(self) -> int:
        return self._cfg().iterations

    def _cfg(self) -> NhaConfig:
        if self.cfg is None:
            raise NhaBenchError("nha: call setup() before training, rendering or loading")
        return self.cfg

    # ----------------------------------------------------------------------------- energies
    def _stage_weights(self, stage: int) -> dict[str, float]:
        c, i = self._cfg(), stage - 1
        return {
            "lmk": c.w_lmk[i], "eyelid": c.w_eyelid[i], "normal": c.w_normal[i], "semantic": c.w_semantic[i],
            "silhouette": c.w_silhouette[i], "rgb": c.w_rgb[i], "perc": c.w_perc[i],
        }

    def _test_weights(self) -> dict[str, float]:
        """E_joint for the test-time fit: landmark anchoring of stage 2, appearance and semantics of
        stage 3 (photometric at full weight); no normal term (test normals are not inputs)."""
        c = self._cfg()
        return {
            "lmk": c.w_lmk[1], "eyelid": c.w_eyelid[1], "normal": 0.0, "semantic": c.w_semantic[2],
            "silhouette": c.w_silhouette[2], "rgb": c.w_rgb[1], "perc": c.w_perc[2],
        }

    def _energies(self, params: HeadParams, data: FrameData, w: dict[str, float], geometry_regs: bool) -> dict[str, Tensor]:
        """All weighted energy terms of one batch (terms with weight 0 or no data are left out)."""
        c, av = self._cfg(), self.avatar
        h, wd, K = data.height, data.width, data.K
        geo = av.geometry(params)
        terms: dict[str, Tensor] = {}
        lmk = av.landmarks_2d(geo.verts_cam, K)
        px = LMK_REFERENCE_SIDE / max(h, wd)
        if w["lmk"]:
            terms["lmk"] = w["lmk"] * px * L.landmark_l1(lmk, data.landmarks, data.lmk_weight)
        if w["eyelid"]:
            terms["eyelid"] = w["eyelid"] * px * L.eyelid_l1(lmk, data.landmarks, data.lmk_weight)
        use_normal = bool(w["normal"]) and data.normal is not None
        use_rgb = bool(w["rgb"] or w["perc"])
        use_sem = bool(w["semantic"] or w["silhouette"])
        if use_sem:
            sem = av.semantics(geo.verts_cam, K, h, wd, SIGMA_PX)
            if w["semantic"] and data.parsing is not None:
                xor = [L.soft_xor(sem[:, k], (data.parsing == PARSING_OF_SEMANTIC[k]).float()) for k in range(N_SEMANTIC_XOR)]
                terms["semantic"] = w["semantic"] * torch.stack(xor).sum()
            if w["silhouette"]:
                union = 1.0 - torch.prod(1.0 - sem, dim=1, keepdim=True)
                terms["silhouette"] = w["silhouette"] * L.soft_xor(union, data.head)
        if use_normal or use_rgb:
            sh = av.shade(geo.verts_cam, params, K, h, wd, with_rgb=use_rgb)
            if use_normal:
                valid = sh["mask"] * (data.normal.abs().sum(1, keepdim=True) > 0).float()
                terms["normal"] = w["normal"] * L.normal_laplacian_l1(sh["normal"], data.normal, valid)
            if w["rgb"]:
                terms["rgb"] = w["rgb"] * L.masked_l1(sh["rgb"], data.rgb)
            if w["perc"]:
                terms["perc"] = w["perc"] * self.perceptual(sh["rgb"], data.rgb)
        if geometry_regs:
            mm = 1000.0  # offset regularisers are measured in millimetres
            terms.update(
                L.offset_regulariser(
                    geo.offsets * mm, av.neutral_offsets() * mm, av.edges, av.lap_weight, av.face_weight,
                    c.w_offset_lap, c.w_offset_norm, c.w_offset_pose,
                    av.template_normals if c.offset_lap_frame == "normal" else None, c.offset_lap_tangent_factor,
                )
            )
            if c.w_offset_tangent:
                terms["offset_tangent"] = c.w_offset_tangent * L.tangential_magnitude(geo.offsets * mm, av.template_normals)
            terms["reg_shape"] = c.w_reg_shape * params.shape.pow(2).sum(-1).mean()
        terms["reg_expr"] = c.w_reg_expr * params.expr.pow(2).sum(-1).mean()
        terms["reg_pose"] = c.w_reg_pose * params.pose[:, 3:].pow(2).sum(-1).mean()
        return terms

    # ----------------------------------------------------------------------------- training
    def _set_trainable(self, stage: int) -> None:
        """Stage 1 trains geometry (G, shape), stage 2 texture (encoder, T), stage 3 both."""
        for p in self.avatar.geometry_parameters() + [self.shape]:
            p.requires_grad_(stage != 2)
        for p in self.avatar.texture_parameters():
            p.requires_grad_(stage != 1)

    def _set_offset_rates(self, stage: int) -> None:
        """G's learning rates for the stage (``lr_offset_stage3_factor`` lowers them in stage 3)."""
        c = self._cfg()
        rate = c.lr_offset * (c.lr_offset_stage3_factor if stage == 3 else 1.0)
        sine, film_and_head = self.opt_geometry.param_groups[:2]
        sine["lr"], film_and_head["lr"] = rate * c.lr_offset_sine_factor, rate

    def train_iteration(self, step: int) -> dict[str, float]:
        """One optimisation step of the stage that ``step`` falls in."""
        c = self._cfg()
        stage = c.stage(step)
        self._set_trainable(stage)
        self._set_offset_rates(stage)
        n = self.expr.shape[0]
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        if stage == 1 and self.stage1_frame_weights is not None:
            idx = torch.multinomial(self.stage1_frame_weights, min(c.batch_size, n), generator=gen)
        else:
            idx = torch.randperm(n, generator=gen)[: min(c.batch_size, n)]
        idx = idx.to(self.device)
        params = self.train_params(idx)
        with matmul_precision(c.tf32_matmul):
            terms = self._energies(params, self.frames.select(idx), self._stage_weights(stage), geometry_regs=stage != 2)
            total = torch.stack(list(terms.values())).sum()
            for opt in (self.opt_frames, self.opt_geometry, self.opt_texture):
                opt.zero_grad(set_to_none=True)
            total.backward()
        optims = [self.opt_frames] + ([self.opt_geometry] if stage != 2 else []) + ([self.opt_texture] if stage != 1 else [])
        row = {"loss": float(total.detach()), "stage": float(stage), **{k: float(v.detach()) for k, v in terms.items()}}
        if not self._finite_gradients(total, optims):
            self._nonfinite_steps += 1
            log.warning("nha: step %d has a non-finite loss or gradient; skipped", step)
            if self._nonfinite_steps >= MAX_NONFINITE_STEPS:
                raise NhaBenchError(
                    f"nha: {self._nonfinite_steps} consecutive steps up to step {step} had a non-finite loss or gradient",
                    fix="run again to resume from the last checkpoint, or fit with another --seed or a lower lr_offset",
                )
            return {**row, "skipped_nonfinite": 1.0}
        self._nonfinite_steps = 0
        for opt in optims:
            opt.step()
        return row

    @staticmethod
    def _finite_gradients(total: Tensor, optims: list[torch.optim.Optimizer]) -> bool:
        """Whether the loss and every gradient the step would apply are finite (one device sync):
        a rare degenerate batch (GPU fits of subject_f1 once gave NaN shading in stage 3) is skipped
        instead of turning every parameter into NaN."""
        grads = [p.grad for opt in optims for group in opt.param_groups for p in group["params"] if p.grad is not None]
        checks = torch.stack([torch.isfinite(total)] + [torch.isfinite(g).all() for g in grads])
        return bool(checks.all())

    # ----------------------------------------------------------------------------- test time
    def fit_frame_params(self, test: Sequence) -> None:
        """Optimise only expression and pose of the test frames (networks, shape, translation frozen)."""
        c = self._cfg()
        init = tracked_params(test, self.device)
        frames = load_frames(test, c.train_size, self.device)
        expr, pose = init.expr.clone(), init.pose.clone()
        shape = self.shape.detach()
        for p in self.avatar.parameters():
            p.requires_grad_(False)
        weights = self._test_weights()
        n = len(test)
        for start in range(0, n, c.test_batch_size):
            sl = slice(start, min(n, start + c.test_batch_size))
            e, p = nn.Parameter(expr[sl].clone()), nn.Parameter(pose[sl].clone())
            opt = torch.optim.Adam([e, p], lr=c.lr_test)
            data = frames.select(torch.arange(sl.start, sl.stop, device=self.device))
            for _ in range(c.test_iterations):
                params = HeadParams(shape.expand(len(e), -1), e, p, init.translation[sl])
                with matmul_precision(c.tf32_matmul):
                    total = torch.stack(list(self._energies(params, data, weights, geometry_regs=False).values())).sum()
                    opt.zero_grad(set_to_none=True)
                    total.backward()
                opt.step()
            expr[sl], pose[sl] = e.detach(), p.detach()
        self._test = {"indices": list(test.indices), "expr": expr, "pose": pose}

    def _render_params(self, test: Sequence) -> HeadParams:
        init = tracked_params(test, self.device)
        shape = self.shape.detach().expand(len(test), -1)
        if self._test is not None and self._test["indices"] == list(test.indices):
            return HeadParams(shape, self._test["expr"], self._test["pose"], init.translation)
        return HeadParams(shape, init.expr, init.pose, init.translation)

    @torch.no_grad()
    def render(self, test: Sequence) -> Renders:
        """RGB and camera-space normals at the dataset resolution; meshes (the head model's
        ``evaluation_surface``) in mm, camera frame."""
        c = self._cfg()
        params = self._render_params(test)
        H, W = test.size
        K = torch.as_tensor(test.K, dtype=torch.float32, device=self.device)
        kept, faces, masks = evaluation_surface(self.avatar.head)
        rgb, normal, meshes = [], [], []
        for start in range(0, len(test), c.test_batch_size):
            sl = slice(start, min(len(test), start + c.test_batch_size))
            p = HeadParams(params.shape[sl], params.expr[sl], params.pose[sl], params.translation[sl])
            verts = self.avatar.geometry(p).verts_cam
            sh = self.avatar.shade(verts, p, K, H, W, with_rgb=True)
            rgb.append(sh["rgb"].clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy())
            normal.append(sh["normal"].permute(0, 2, 3, 1).cpu().numpy())
            for v in (verts * 1000.0).cpu().numpy():
                meshes.append(Mesh(v[kept].astype(np.float32), faces, dict(masks)))
        return Renders(
            indices=list(test.indices),
            rgb=np.concatenate(rgb).astype(np.float32),
            normal=np.concatenate(normal).astype(np.float32),
            meshes=meshes,
        )

    # ----------------------------------------------------------------------------- checkpoints
    def _networks(self) -> dict[str, nn.Module]:
        av = self.avatar
        return {"offset_mlp": av.offset_mlp, "normal_encoder": av.normal_encoder, "texture_mlp": av.texture_mlp}

    def save(self, directory: Path) -> None:
        """Networks, per-frame parameters, optimiser states and test-time parameters -> nha.pt."""
        c = self._cfg()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {
            "config_hash": c.hash(),
            "config": c.hashed_fields(),
            "preset": self.preset,
            "networks": {k: m.state_dict() for k, m in self._networks().items()},
            "frames": {k: getattr(self, k).detach().cpu() for k in ("shape", "expr", "pose", "translation")},
            "optim": {k: getattr(self, k).state_dict() for k in ("opt_geometry", "opt_texture", "opt_frames")},
            "test": None if self._test is None else {
                "indices": self._test["indices"], "expr": self._test["expr"].cpu(), "pose": self._test["pose"].cpu()
            },
        }
        tmp = directory / f".{CHECKPOINT}.tmp"
        torch.save(state, tmp)
        tmp.replace(directory / CHECKPOINT)

    def _checkpoint_options_fix(self, state: dict) -> str:
        """How to load a checkpoint of another configuration: the options it was fitted with, where the
        checkpoint tells (its stored fields; a checkpoint from before they were stored, session 23,
        only when it is this run's configuration with every later option off, ``INERT_WHEN``)."""
        stored = state.get("config")
        if stored is None:
            off = get_config(self.preset, **{**self.overrides, **INERT_WHEN})
            stored = off.hashed_fields() if off.hash() == state.get("config_hash") else None
        options = options_to_match(self._cfg(), stored) if stored is not None and state.get("preset") == self.preset else {}
        if not options:
            return "use the same preset/overrides, or fit again with --force"
        given = " ".join(f"--option {shlex.quote(f'{k}={json.dumps(v)}')}" for k, v in options.items())
        return f"load it with the options it was fitted with, {given}, or fit again with --force"

    def load(self, directory: Path) -> None:
        """Restore a checkpoint written by :meth:`save` for the same preset and configuration."""
        c = self._cfg()
        path = Path(directory) / CHECKPOINT
        if not path.is_file():
            raise NhaBenchError("nha checkpoint is missing", path, fix="fit first, or point to the run's checkpoint folder")
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as exc:  # torch.load raises many types (pickle, zip, runtime) for corrupt files
            raise NhaBenchError(f"cannot read nha checkpoint ({exc})", path, fix="delete it and fit again") from exc
        if state.get("config_hash") != c.hash():
            raise NhaBenchError(
                f"checkpoint was written with another configuration ({state.get('preset')}, {state.get('config_hash')}) "
                f"than this run ({self.preset}, {c.hash()})",
                path,
                fix=self._checkpoint_options_fix(state),
            )
        for k, m in self._networks().items():
            m.load_state_dict(state["networks"][k])
        with torch.no_grad():
            for k, v in state["frames"].items():
                if getattr(self, k).shape != v.shape:
                    raise NhaBenchError(
                        f"checkpoint {k} has shape {tuple(v.shape)}, this subject needs {tuple(getattr(self, k).shape)}",
                        path, fix="the checkpoint belongs to another subject; fit again",
                    )
                getattr(self, k).copy_(v)
        if "optim" not in state:  # a slimmed checkpoint (carried to another machine): fresh optimisers
            self.notes.append("resumed from a checkpoint without optimiser states")
        for k, s in state.get("optim", {}).items():
            getattr(self, k).load_state_dict(s)
        test = state.get("test")
        self._test = None if test is None else {
            "indices": list(test["indices"]), "expr": test["expr"].to(self.device), "pose": test["pose"].to(self.device)
        }
