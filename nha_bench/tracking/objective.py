"""The tracking energy: landmarks, photometric, silhouette, temporal and prior terms.

Analysis by synthesis as in Face2Face: the head model is posed, moved into the camera, projected
(landmarks) and rasterized with albedo x SH shading (photometric), and compared with the frame.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor

from nha_bench.head.base import HeadModel, HeadParams, POSE_SLICES
from nha_bench.render import interpolate, project, rasterize, soft_silhouette, vertex_normals
from nha_bench.tracking.camera import head_vertices_camera, model_to_camera
from nha_bench.tracking.config import TrackerConfig
from nha_bench.tracking.landmarks import LandmarkModel
from nha_bench.tracking.shading import ambient_sh, mesh_edges, shade, smoothness

N_CONTOUR = 17  # iBUG-68 jaw-line landmarks 0..16 slide with the view; they get w_contour
REFERENCE_SIDE = 512.0  # landmark distances are measured in pixels of an image this wide


@dataclass
class Targets:
    """What a batch of B frames is compared with.

    landmarks (B, 68, 3): x, y in pixels at full resolution, visibility. rgb (B, h, w, 3) in [0, 1],
    region (B, h, w) bool pixels where the photometric term applies and fg (B, h, w) float
    foreground mask, all at the render scale (``K_small``, ``size``); None disables the term.
    """

    landmarks: Tensor
    K: Tensor
    K_small: Tensor
    size: tuple[int, int]
    rgb: Tensor | None = None
    region: Tensor | None = None
    fg: Tensor | None = None
    landmark_scale: float = 1.0  # pixels -> pixels of a REFERENCE_SIDE image (resolution-free weights)


@dataclass
class Variables:
    """Optimised quantities: shared shape (1, S) and albedo (V, 3); per frame expr (B, E),
    global rotation (B, 3), jaw (B, 3) of which only the opening angle (x, >= 0) is used,
    translation (B, 3) metres, SH lighting (B, 9, 3)."""

    shape: Tensor
    albedo: Tensor
    expr: Tensor
    rotation: Tensor
    jaw: Tensor
    translation: Tensor
    sh: Tensor

    @classmethod
    def initial(cls, model: HeadModel, batch: int, device: torch.device | str) -> "Variables":
        z = lambda *s: torch.zeros(*s, device=device)  # noqa: E731
        return cls(z(1, model.n_shape), torch.full((model.n_vertices, 3), 0.5, device=device),
                   z(batch, model.n_expr), z(batch, 3), z(batch, 3), z(batch, 3), ambient_sh(batch, device))

    def head_params(self) -> HeadParams:
        b = self.expr.shape[0]
        pose = torch.zeros(b, 15, device=self.expr.device)
        pose = pose.index_copy(1, _idx(POSE_SLICES["global"], pose), self.rotation)
        # the jaw only opens: rotation about the model's x axis, never into the skull
        jaw = torch.cat([self.jaw[:, :1].clamp_min(0.0), torch.zeros_like(self.jaw[:, 1:])], 1)
        pose = pose.index_copy(1, _idx(POSE_SLICES["jaw"], pose), jaw)
        return HeadParams(self.shape.expand(b, -1), self.expr, pose, self.translation)

    def frames(self, index: list[int] | slice) -> "Variables":
        """Detached copy of some frames (shared tensors copied whole)."""
        per = {"expr", "rotation", "jaw", "translation", "sh"}
        return Variables(**{f.name: (getattr(self, f.name)[index] if f.name in per else getattr(self, f.name))
                            .detach().clone() for f in fields(self)})

    def tensors(self, names: tuple[str, ...]) -> list[Tensor]:
        return [getattr(self, n) for n in names]


def _idx(s: slice, like: Tensor) -> Tensor:
    return torch.arange(s.start, s.stop, device=like.device)


def render_shaded(verts: Tensor, faces: Tensor, albedo: Tensor, sh: Tensor, K: Tensor, size: tuple[int, int]):
    """Rasterize camera-frame ``verts`` (B, V, 3) with per-vertex ``albedo`` (V, 3) under SH
    lighting ``sh`` (B, 9, 3): shaded colour (B, h, w, 3), unit camera-space normals (B, h, w, 3),
    both 0 on background, and the fragments."""
    frag = rasterize(verts, faces, K, size[0], size[1])
    normals = vertex_normals(verts, faces)
    attr = torch.cat([albedo.expand(verts.shape[0], -1, -1), normals], -1)
    px = interpolate(attr, faces, frag)
    n = F.normalize(px[..., 3:], dim=-1, eps=1e-8)
    colour = px[..., :3] * shade(n, sh)
    return colour, n, frag


class Energy:
    """Evaluates the tracking terms for one head model and configuration."""

    def __init__(self, model: HeadModel, config: TrackerConfig):
        self.model, self.config = model, config
        regions = model.regions
        faces = model.faces
        # faces whose colour is skin-like; only they are rasterized for the photometric term (the
        # face region occludes itself, rarely is it hidden by the ears or scalp), 2-3x cheaper
        self.photo_faces = faces[regions["face"][faces].all(-1)]
        self.head_faces = faces[regions["head"][faces].all(-1)]
        self.edges = mesh_edges(faces)
        self.landmark_model = LandmarkModel(model)
        w = torch.ones(68, device=faces.device)
        w[:N_CONTOUR] = config.w_contour
        self.landmark_weights = w

    def vertices(self, var: Variables) -> Tensor:
        """(B, V, 3) camera-frame vertices, metres."""
        return head_vertices_camera(self.model, var.head_params())

    def landmarks_camera(self, var: Variables) -> Tensor:
        """(B, 68, 3) camera-frame landmarks, metres (evaluated on the landmark vertices only)."""
        return model_to_camera(self.landmark_model(var.head_params()), var.translation)

    def landmarks_px(self, var: Variables, K: Tensor) -> Tensor:
        return project(self.landmarks_camera(var), K)

    def landmark_loss(self, landmarks: Tensor, t: Targets) -> Tensor:
        """Visibility-weighted robust (pseudo-Huber, 1 px knee) landmark distance in pixels of a
        REFERENCE_SIDE image."""
        r = (project(landmarks, t.K) - t.landmarks[..., :2]) * t.landmark_scale
        d = torch.sqrt((r * r).sum(-1) + 1.0) - 1.0
        w = t.landmarks[..., 2] * self.landmark_weights
        return (w * d).sum() / w.sum().clamp_min(1e-6)

    def photo_loss(self, verts: Tensor, var: Variables, t: Targets) -> Tensor:
        """Mean absolute colour error over pixels rendered from the face region and inside the
        target's photometric region."""
        colour, _, frag = render_shaded(verts, self.photo_faces, var.albedo, var.sh, t.K_small, t.size)
        valid = frag.mask & t.region
        if not bool(valid.any()):
            return verts.sum() * 0.0
        return (colour - t.rgb).abs().mean(-1)[valid].mean()

    def silhouette_loss(self, verts: Tensor, t: Targets) -> Tensor:
        """Fraction of the soft head silhouette lying outside the foreground mask (one-sided: the
        model is bald, so hair and clothes may extend beyond it)."""
        sil = soft_silhouette(verts, self.head_faces, t.K_small, t.size[0], t.size[1], sigma=1.0)[..., 0]
        return (sil * (1.0 - t.fg)).sum() / sil.sum().clamp_min(1.0)

    def temporal_loss(self, landmarks: Tensor, previous: Tensor) -> Tensor:
        """Mean squared displacement (mm^2) of the 3D landmarks from the previous frame."""
        d = (landmarks - previous) * 1e3
        return (d * d).sum(-1).mean()

    def __call__(
        self,
        var: Variables,
        t: Targets,
        photometric: bool,
        previous: Tensor | None = None,
        albedo_prior: bool = False,
    ) -> dict[str, Tensor]:
        """All active terms, already weighted; their sum is the energy."""
        c = self.config
        landmarks = self.landmarks_camera(var)
        b = landmarks.shape[0]
        photometric = photometric and t.rgb is not None and t.region is not None
        silhouette = c.w_silhouette > 0 and t.fg is not None
        verts = self.vertices(var) if (photometric or silhouette) else None
        terms = {
            "landmark": c.w_landmark * self.landmark_loss(landmarks, t),
            "shape_reg": c.w_shape_reg * (var.shape**2).sum(),
            "expr_reg": c.w_expr_reg * (var.expr**2).sum() / b,
            "jaw_reg": c.w_jaw_reg * (var.jaw**2).sum() / b,
        }
        if photometric:
            terms["photo"] = c.w_photo * self.photo_loss(verts, var, t)
        if albedo_prior:
            terms["albedo_smooth"] = c.w_albedo_smooth * smoothness(var.albedo, self.edges)
        if silhouette:
            terms["silhouette"] = c.w_silhouette * self.silhouette_loss(verts, t)
        if previous is not None and c.w_temporal > 0:
            terms["temporal"] = c.w_temporal * self.temporal_loss(landmarks, previous)
        return terms
