"""ICT-FaceKit Light as a FLAME-like head model, from the asset shipped inside the package.

The asset (``assets/ict_light.npz``, MIT, see ``assets/LICENSE_ICT-FaceKit``) is built by
``scripts/build_ict_asset.py``: face, scalp, neck, mouth socket, eye sockets and eyeballs (teeth,
gums, eyelashes and the other shading meshes dropped), 100 identity modes, the 53 ARKit
expressions, and skinning weights added on top of the joint-less upstream model:

- global rotation about a root at the centre of the lower neck;
- neck rotation about the top of the neck, weights ramping smoothly over 4 cm of neck;
- jaw rotation about a hinge placed in front of the ears, weights fitted from jawOpen.
  **jawOpen stays an expression blendshape**; pose[6:9] adds a rigid jaw rotation on top
  (and likewise the eyeLook* shapes stay blendshapes beside the eye rotations);
- left/right eye rotations (left = the subject's left, +x) about the fitted eyeball centres,
  eyeballs rigid.

Joint positions follow the identity (each joint is its rest position plus the mean identity
offset of a few anchor vertices). No pose-corrective blendshapes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from nha_bench.errors import UnavailableError
from nha_bench.head.base import HeadModel, HeadParams
from nha_bench.head.lbs import lbs
from nha_bench.registry import HEAD_MODELS

ASSET = Path(__file__).parent / "assets" / "ict_light.npz"
REGION_KEYS = ("face", "scalp", "ears", "eyes", "neck", "mouth", "head", "lower_neck")


class IctHeadModel(HeadModel):
    """ICT-FaceKit Light with FLAME semantics: (shape, expr, 15-d pose, translation) -> vertices."""

    name = "ict"

    def __init__(self, n_shape: int = 100, n_expr: int = 53, path: str | Path = ASSET):
        super().__init__()
        path = Path(path)
        try:
            d = dict(np.load(path))
        except (OSError, ValueError) as e:
            raise UnavailableError(
                f"cannot read the ICT head-model asset ({e})",
                path,
                fix="reinstall nha-bench or rebuild it with scripts/build_ict_asset.py",
            ) from e
        k_id, k_ex = d["identity_mm"].shape[0], d["expression_mm"].shape[0]
        if not (0 < n_shape <= k_id and 0 < n_expr <= k_ex):
            raise UnavailableError(
                f"ICT model has {k_id} identity and {k_ex} expression modes, asked for "
                f"n_shape={n_shape}, n_expr={n_expr}",
                path,
                fix=f"use n_shape <= {k_id} and n_expr <= {k_ex}",
            )
        self.n_shape, self.n_expr = n_shape, n_expr
        self.expression_names = [str(s) for s in d["expression_names"][:n_expr]]
        v = d["v_template"]
        self._set_topology(
            d["faces"], v, {k: d[f"region_{k}"] for k in REGION_KEYS},
            d["landmark_faces"], d["landmark_bary"],
        )
        nv = len(v)
        as_f32 = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))  # noqa: E731
        mm_to_m = lambda a, k: as_f32(a[:k]).reshape(k, nv * 3) * 1e-3  # noqa: E731  (after f16->f32)
        self.register_buffer("shapedirs", mm_to_m(d["identity_mm"], n_shape))
        self.register_buffer("exprdirs", mm_to_m(d["expression_mm"], n_expr))
        self.register_buffer("lbs_weights", as_f32(d["lbs_weights"]))
        self.register_buffer("joint_regressor", as_f32(d["joint_regressor"]))
        self.register_buffer("joint_offset", as_f32(d["joint_offset"]))
        self.parents = [int(p) for p in d["parents"]]
        self.register_buffer("landmark_vertices", torch.as_tensor(d["landmark_vertices"], dtype=torch.long))

    def rest_joints(self, shape: Tensor) -> Tensor:
        """Rest-pose joints (B, 5, 3) for identity coefficients ``shape``."""
        v_id = self.canonical_vertices + (shape @ self.shapedirs).view(shape.shape[0], -1, 3)
        return torch.einsum("jv,bvk->bjk", self.joint_regressor, v_id) + self.joint_offset

    def forward(self, params: HeadParams) -> Tensor:
        """Posed vertices (B, V, 3), metres."""
        params.check(self)
        b = params.batch_size
        v = self.canonical_vertices + (
            params.shape @ self.shapedirs + params.expr @ self.exprdirs
        ).view(b, -1, 3)
        joints = self.rest_joints(params.shape)
        return lbs(v, joints, params.pose, self.parents, self.lbs_weights) + params.translation[:, None]


@HEAD_MODELS.register("ict")
def _ict(**kw) -> IctHeadModel:
    return IctHeadModel(**kw)
