"""Head-model landmarks evaluated on the few vertices they use, for the landmark-only stages.

The HeadModel interface only poses all vertices (17k for ICT); the landmark stages need ~200.
For models built as blendshapes + linear-blend skinning (ICT), this evaluates the same formula on
the landmark triangles' vertices only (about 50x less work). It checks itself against the full
model at construction and falls back to the full model when they disagree or the model is of
another kind, so a change in the head model can never silently change the tracker's answer.
"""

from __future__ import annotations

import torch
from torch import Tensor

from nha_bench.head.base import HeadModel, HeadParams
from nha_bench.head.lbs import lbs

TOLERANCE_M = 1e-6


class LandmarkModel:
    """``(params) -> (B, 68, 3)`` model-frame landmarks with zero translation."""

    def __init__(self, model: HeadModel):
        self.model = model
        tri = model.faces[model.landmark_faces]  # (68, 3)
        self.vertex_ids, inverse = torch.unique(tri.flatten(), return_inverse=True)
        self.local_tri = inverse.view(-1, 3)
        self.fast = self._prepare() and self._agrees()

    def _prepare(self) -> bool:
        m = self.model
        needed = ("shapedirs", "exprdirs", "lbs_weights", "parents", "rest_joints")
        if not all(hasattr(m, n) for n in needed):
            return False
        ids, s, e = self.vertex_ids, m.n_shape, m.n_expr
        with torch.no_grad():
            self.canonical = m.canonical_vertices[ids]
            self.shapedirs = m.shapedirs.view(s, -1, 3)[:, ids].reshape(s, -1)
            self.exprdirs = m.exprdirs.view(e, -1, 3)[:, ids].reshape(e, -1)
            self.weights = m.lbs_weights[ids]
            zero = torch.zeros(1, s, device=ids.device)
            self.joints0 = m.rest_joints(zero)  # rest joints are affine in shape: J0 + shape . dJ
            self.joint_dirs = m.rest_joints(torch.eye(s, device=ids.device)) - self.joints0
        return True

    def _agrees(self) -> bool:
        g = torch.Generator().manual_seed(0)
        p = HeadParams.zeros(self.model, 2)
        for name in ("shape", "expr", "pose"):
            setattr(p, name, torch.randn(getattr(p, name).shape, generator=g) * 0.3)
        p = p.to(self.model.canonical_vertices.device)
        with torch.no_grad():
            full = self.model.landmarks(self.model(p))
            self.fast = True
            fast = self(p)
        return bool((full - fast).abs().max() < TOLERANCE_M)

    def __call__(self, params: HeadParams) -> Tensor:
        if not self.fast:
            centred = HeadParams(params.shape, params.expr, params.pose, torch.zeros_like(params.translation))
            return self.model.landmarks(self.model(centred))
        b = params.pose.shape[0]
        v = self.canonical + (params.shape @ self.shapedirs + params.expr @ self.exprdirs).view(b, -1, 3)
        joints = self.joints0 + torch.einsum("bs,sjk->bjk", params.shape, self.joint_dirs)
        posed = lbs(v, joints, params.pose, self.model.parents, self.weights)
        tri = posed[:, self.local_tri]  # (B, 68, 3, 3)
        return (tri * self.model.landmark_bary[None, :, :, None]).sum(2)
