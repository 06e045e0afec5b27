"""Linear blend skinning along a joint tree (FLAME's formulation), shared by all head models.

Hand-written because torch has no LBS and the only packaged version (smplx) pulls in extra
dependencies; it follows the SMPL/FLAME equations: per-joint rigid transforms composed along the
tree, expressed relative to the rest joints, blended per vertex by the skinning weights.
"""

from __future__ import annotations

import torch
from torch import Tensor


def axis_angle_to_matrix(aa: Tensor) -> Tensor:
    """Rodrigues' formula: (..., 3) axis-angle -> (..., 3, 3); smooth (finite gradient) at 0."""
    theta2 = (aa * aa).sum(-1, keepdim=True)
    theta = torch.sqrt(theta2 + 1e-16)
    # sin(t)/t and (1-cos t)/t^2 with series near 0 so the gradient at the zero pose is exact
    small = theta2 < 1e-8
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2.clamp_min(1e-16))
    x, y, z = aa.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*aa.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand_as(k)
    return eye + a[..., None] * k + b[..., None] * (k @ k)


def rigid_transforms(rot: Tensor, joints: Tensor, parents: list[int]) -> tuple[Tensor, Tensor]:
    """Compose per-joint rotations along the tree.

    rot (B, J, 3, 3) local rotations, joints (B, J, 3) rest joint positions, parents[j] < j
    (-1 for the root). Returns posed joints (B, J, 3) and skinning transforms (B, J, 4, 4) that
    map rest-pose points to posed points.
    """
    b, j = joints.shape[:2]
    rel = joints.clone()
    rel[:, 1:] = joints[:, 1:] - joints[:, parents[1:]]
    local = torch.zeros(b, j, 4, 4, dtype=rot.dtype, device=rot.device)
    local[..., :3, :3] = rot
    local[..., :3, 3] = rel
    local[..., 3, 3] = 1
    chain = [local[:, 0]]
    for i in range(1, j):
        chain.append(chain[parents[i]] @ local[:, i])
    world = torch.stack(chain, 1)
    posed_joints = world[..., :3, 3]
    # subtract the rest joint so that the transform acts on rest-pose coordinates
    offset = (world[..., :3, :3] @ joints[..., None])[..., 0]
    skin = world.clone()
    skin[..., :3, 3] = posed_joints - offset
    return posed_joints, skin


def lbs(vertices: Tensor, joints: Tensor, pose: Tensor, parents: list[int], weights: Tensor) -> Tensor:
    """Skin rest-pose ``vertices`` (B, V, 3) with axis-angle ``pose`` (B, 3J).

    ``joints`` (B, J, 3) rest joints, ``weights`` (V, J) rows summing to one.
    """
    b, j = joints.shape[:2]
    rot = axis_angle_to_matrix(pose.reshape(b, j, 3))
    _, skin = rigid_transforms(rot, joints, parents)
    t = torch.einsum("vj,bjkl->bvkl", weights, skin[..., :3, :])  # (B, V, 3, 4)
    return (t[..., :3] @ vertices[..., None])[..., 0] + t[..., 3]
