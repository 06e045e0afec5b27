"""Frames of a Sequence as tensors at the training resolution (images resized, K and landmarks scaled)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from nha_bench.errors import DatasetError
from nha_bench.head.base import N_POSE, HeadParams
from nha_bench.head.lbs import axis_angle_to_matrix
from nha_bench.method import Sequence


@dataclass
class FrameData:
    """Targets of N frames at (height, width); optional fields are None when the subject lacks them.

    rgb (N, 3, H, W) zero off the head; head (N, 1, H, W) head mask (parsing labels 1-5, else the
    foreground mask); parsing (N, H, W) long; normal (N, 3, H, W) camera-frame, zero where unknown;
    landmarks (N, 68, 2) pixels; lmk_weight (N, 68); K (3, 3) scaled to (height, width).
    """

    rgb: Tensor
    head: Tensor
    parsing: Tensor | None
    normal: Tensor | None
    landmarks: Tensor
    lmk_weight: Tensor
    K: Tensor
    height: int
    width: int

    def select(self, idx: Tensor) -> "FrameData":
        """The frames at positions ``idx``."""
        pick = lambda t: None if t is None else t[idx]  # noqa: E731
        return FrameData(
            pick(self.rgb), pick(self.head), pick(self.parsing), pick(self.normal),
            pick(self.landmarks), pick(self.lmk_weight), self.K, self.height, self.width,
        )


def train_size(height: int, width: int, longest: int) -> tuple[int, int]:
    """(h, w) with the longest side at most ``longest``, aspect kept."""
    s = min(1.0, longest / max(height, width))
    return max(1, round(height * s)), max(1, round(width * s))


def load_frames(seq: Sequence, longest: int, device: torch.device, positions: list[int] | None = None) -> FrameData:
    """Load and resize the frames of ``seq`` (all, or ``positions``); area resampling for images,
    nearest for labels."""
    H, W = seq.size
    h, w = train_size(H, W, longest)
    sx, sy = w / W, h / H
    pos = list(range(len(seq))) if positions is None else positions

    def to_t(a: np.ndarray) -> Tensor:
        return torch.as_tensor(a, device=device)

    def area(x: Tensor) -> Tensor:
        return x if (h, w) == (H, W) else F.interpolate(x, size=(h, w), mode="area")

    rgb = area(to_t(seq.load("rgb", pos)).permute(0, 3, 1, 2).float())
    subject = seq.subject
    parsing = None
    if subject.has("parsing"):
        lab = to_t(seq.load("parsing", pos)).long()
        parsing = F.interpolate(lab[:, None].float(), size=(h, w), mode="nearest")[:, 0].long()
        head = ((parsing >= 1) & (parsing <= 5)).float()[:, None]
    else:
        head = (area(to_t(seq.load("mask", pos))[:, None].float()) > 0.5).float()
    normal = None
    if subject.has("normal"):
        n = area(to_t(seq.load("normal", pos)).permute(0, 3, 1, 2).float())
        normal = n / n.norm(dim=1, keepdim=True).clamp_min(1e-6) * (n.norm(dim=1, keepdim=True) > 0.5)
    lmk = seq.landmarks()[pos]
    if lmk.ndim != 3 or lmk.shape[1:] != (68, 3):
        raise DatasetError(f"landmarks must be (N, 68, 3), got {lmk.shape}", subject.root / "landmarks.npy")
    lmk_t = to_t(lmk.astype(np.float32))
    scale = torch.tensor([sx, sy], device=device)
    K = to_t(seq.K.astype(np.float32)).clone()
    K[0] *= sx
    K[1] *= sy
    return FrameData(rgb * head, head, parsing, normal, lmk_t[..., :2] * scale, lmk_t[..., 2].clamp(0, 1), K, h, w)


def tracked_params(seq: Sequence, device: torch.device) -> HeadParams:
    """The split's tracked head-model parameters, checked for shape and NaNs."""
    path = seq.subject.root / "tracking.npz"
    try:
        data = seq.tracking()
    except IndexError as exc:
        raise DatasetError(
            f"tracking.npz has fewer frames than split {seq.split!r} needs ({exc})", path, fix="re-run the tracker"
        ) from exc
    for key in ("shape", "expr", "pose", "translation"):
        if key not in data:
            raise DatasetError(f"tracking.npz lacks {key!r}", path, fix="re-run the tracker (`nha-bench data prepare`)")
        if not np.isfinite(data[key]).all():
            raise DatasetError(f"tracking.npz {key!r} contains NaN or inf", path, fix="re-run the tracker")
    n = len(seq)
    if data["pose"].shape != (n, N_POSE) or data["translation"].shape != (n, 3) or data["expr"].shape[0] != n:
        raise DatasetError(
            f"tracking.npz has pose {data['pose'].shape}, translation {data['translation'].shape}, expr "
            f"{data['expr'].shape} for {n} frames of split {seq.split!r}",
            path,
            fix="tracking was made for other frames; re-run the tracker",
        )
    shape = np.asarray(data["shape"], dtype=np.float32).reshape(1, -1).repeat(n, 0)
    return HeadParams.from_numpy_dict(
        {"shape": shape, "expr": data["expr"], "pose": data["pose"], "translation": data["translation"]}, device=device
    )


def yaw_balanced_weights(global_pose: Tensor, bin_deg: float) -> Tensor:
    """Sampling weights (N,) that give every occupied bin of ``bin_deg`` degrees of head yaw the same
    total weight: 1 / (frames in the frame's bin). ``global_pose`` (N, 3) axis-angle in the head
    model's frame (y up, z towards the camera at zero pose); yaw is the turn of the face's forward
    axis about y."""
    forward = axis_angle_to_matrix(global_pose)[:, :, 2]
    yaw = torch.rad2deg(torch.atan2(forward[:, 0], forward[:, 2]))
    _, bin_of_frame, frames_in_bin = torch.unique(torch.floor(yaw / bin_deg), return_inverse=True, return_counts=True)
    return 1.0 / frames_in_bin[bin_of_frame].float()
