"""LPIPS v0.1, AlexNet trunk (Zhang et al. 2018), without importing ``lpips`` or torchvision.

The ``lpips`` package imports torchvision, which cannot be installed next to the CPU torch, so
the network is re-built here: torchvision's AlexNet ``features`` layout (its checkpoint loads
as-is), lpips' ScalingLayer, unit-normalised channels and the v0.1 linear layers. The linear
weights are read from the installed lpips wheel, the trunk from torchvision's checkpoint.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from nha_bench.errors import UnavailableError
from nha_bench.metrics.base import FrameScores, ImageBatch, Metric, MetricSpec
from nha_bench.metrics.protocol import (
    composite_on_background,
    default_device,
    exact_fp32,
    to_nchw,
    validate_image_batch,
)
from nha_bench.registry import METRICS

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
ALEXNET_SHA256_PREFIX = "7be5be79"  # torchvision names its checkpoints by their sha256 prefix
LINEAR_FILE = "lpips/weights/v0.1/alex.pth"
ENV_ALEXNET = "NHA_BENCH_ALEXNET_WEIGHTS"
ENV_LINEAR = "NHA_BENCH_LPIPS_LINEAR"
CHANNELS = (64, 192, 384, 256, 256)
# lpips.ScalingLayer constants: inputs in [-1, 1] are mapped with (x - SHIFT) / SCALE.
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
RELU_INDICES = (1, 4, 7, 9, 11)  # positions of relu1..relu5 in AlexNet.features


class AlexNetFeatures(nn.Module):
    """torchvision's ``AlexNet.features`` up to relu5, returning relu1..relu5."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in RELU_INDICES:
                outputs.append(x)
        return outputs


def backbone_from_state_dict(state_dict: dict[str, torch.Tensor]) -> AlexNetFeatures:
    """AlexNetFeatures loaded from a torchvision AlexNet state dict (``classifier.*`` ignored)."""
    net = AlexNetFeatures()
    features = {k: v for k, v in state_dict.items() if k.startswith("features.")}
    net.load_state_dict(features, strict=True)
    return net.eval()


def random_backbone_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A seeded random AlexNet ``features.*`` state dict: the stand-in trunk for tests."""
    torch.manual_seed(seed)
    return {k: v.clone() for k, v in AlexNetFeatures().state_dict().items()}


def lpips_distance(
    backbone: AlexNetFeatures, linear: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """LPIPS per image of (N, 3, H, W) tensors in [0, 1] (lpips' ``normalize=True``)."""
    shift = x.new_tensor(SHIFT).view(1, 3, 1, 1)
    scale = x.new_tensor(SCALE).view(1, 3, 1, 1)
    total = x.new_zeros(len(x))
    features_x = backbone((2 * x - 1 - shift) / scale)
    features_y = backbone((2 * y - 1 - shift) / scale)
    for fx, fy, w in zip(features_x, features_y, linear, strict=True):
        fx = fx / (fx.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        fy = fy / (fy.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        total = total + ((fx - fy).pow(2) * w.view(1, -1, 1, 1)).sum(1).mean((1, 2))
    return total


def find_linear_weights(path: str | Path | None = None) -> tuple[Path | None, list[str]]:
    """The v0.1 alex linear-layer file and the places looked at (option, env, lpips wheel)."""
    looked: list[str] = []
    candidates: list[Path] = []
    for source, value in (("option", path), (ENV_LINEAR, os.environ.get(ENV_LINEAR))):
        if value:
            looked.append(f"{source}: {value}")
            candidates.append(Path(value))
    if not candidates:
        try:
            dist = importlib.metadata.distribution("lpips")
            for entry in dist.files or []:
                if entry.as_posix().endswith(LINEAR_FILE):
                    candidates.append(Path(dist.locate_file(entry)))
            looked.append("installed distribution 'lpips' (importlib.metadata)")
        except importlib.metadata.PackageNotFoundError:
            looked.append("installed distribution 'lpips' (not installed)")
        spec = importlib.util.find_spec("lpips")  # finds the folder without importing lpips
        for folder in (spec.submodule_search_locations or []) if spec else []:
            candidates.append(Path(folder) / "weights" / "v0.1" / "alex.pth")
    for candidate in candidates:
        if candidate.is_file():
            return candidate, looked
    return None, looked


def find_alexnet_weights(path: str | Path | None = None) -> tuple[Path | None, list[str]]:
    """torchvision's AlexNet checkpoint and the places looked at (option, env, torch hub cache)."""
    looked: list[str] = []
    for source, value in (("option", path), (ENV_ALEXNET, os.environ.get(ENV_ALEXNET))):
        if value:
            looked.append(f"{source}: {value}")
            return (Path(value) if Path(value).is_file() else None), looked
    cached = Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE
    looked.append(f"torch hub cache: {cached}")
    return (cached if cached.is_file() else None), looked


@lru_cache(maxsize=4)
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@METRICS.register("lpips")
class LPIPS(Metric):
    """LPIPS (AlexNet, v0.1) of prediction vs. ground truth, both composited (protocol.md).

    ``backbone_state_dict`` / ``linear_state_dict`` replace the real weights with stand-ins
    (tests); the result is then marked not comparable.
    """

    spec = MetricSpec(
        name="lpips",
        higher_is_better=False,
        unit="",
        inputs="rgb",
        description="LPIPS v0.1 (AlexNet) of the frames composited on black outside the mask",
    )

    def __init__(
        self,
        alexnet_weights: str | Path | None = None,
        linear_weights: str | Path | None = None,
        backbone_state_dict: dict[str, torch.Tensor] | None = None,
        linear_state_dict: dict[str, torch.Tensor] | None = None,
        device: str | None = None,
        chunk: int = 8,
    ):
        self.device = torch.device(device) if device else default_device()
        self.chunk = chunk
        self._stand_in = backbone_state_dict is not None or linear_state_dict is not None
        self._backbone_sd = backbone_state_dict
        self._linear_sd = linear_state_dict
        self._alexnet_path, self._alexnet_looked = (None, [])
        self._linear_path, self._linear_looked = (None, [])
        if backbone_state_dict is None:
            self._alexnet_path, self._alexnet_looked = find_alexnet_weights(alexnet_weights)
        if linear_state_dict is None:
            self._linear_path, self._linear_looked = find_linear_weights(linear_weights)
        self._net: tuple[AlexNetFeatures, list[torch.Tensor]] | None = None

    @property
    def backend(self) -> str:
        return "lpips-0.1-alex-stand-in" if self._stand_in else "lpips-0.1-alex"

    @property
    def comparable(self) -> bool:
        return not self._stand_in

    def unavailable_reason(self) -> str | None:
        if self._backbone_sd is None:
            if self._alexnet_path is None:
                return (
                    f"AlexNet weights {ALEXNET_FILE} not found (looked at: "
                    f"{'; '.join(self._alexnet_looked)}); download "
                    f"https://download.pytorch.org/models/{ALEXNET_FILE} into the torch hub "
                    f"checkpoints folder or set {ENV_ALEXNET}=/path/to/{ALEXNET_FILE}"
                )
            digest = _sha256(self._alexnet_path)
            if not digest.startswith(ALEXNET_SHA256_PREFIX):
                return (
                    f"{self._alexnet_path} is not torchvision's {ALEXNET_FILE} (sha256 "
                    f"{digest[:8]}...); provide the original file"
                )
        if self._linear_sd is None and self._linear_path is None:
            return (
                f"LPIPS v0.1 linear weights {LINEAR_FILE} not found (looked at: "
                f"{'; '.join(self._linear_looked)}); `pip install --no-deps lpips==0.1.4` or set "
                f"{ENV_LINEAR}=/path/to/alex.pth"
            )
        return None

    def _load(self) -> tuple[AlexNetFeatures, list[torch.Tensor]]:
        if self._net is None:
            reason = self.unavailable_reason()
            if reason is not None:
                raise UnavailableError(f"lpips is unavailable: {reason}")
            backbone_sd = self._backbone_sd
            if backbone_sd is None:
                backbone_sd = torch.load(self._alexnet_path, map_location="cpu", weights_only=True)
            linear_sd = self._linear_sd
            if linear_sd is None:
                linear_sd = torch.load(self._linear_path, map_location="cpu", weights_only=True)
            backbone = backbone_from_state_dict(backbone_sd).to(self.device)
            linear = [
                linear_sd[f"lin{k}.model.1.weight"].reshape(-1).float().to(self.device)
                for k in range(len(CHANNELS))
            ]
            self._net = (backbone, linear)
        return self._net

    def score(self, batch: ImageBatch) -> FrameScores:
        validate_image_batch(batch, self.spec.name)
        backbone, linear = self._load()
        pred, target = composite_on_background(batch)
        values = []
        with exact_fp32():
            for start in range(0, len(pred), self.chunk):
                x = to_nchw(pred[start : start + self.chunk], self.device)
                y = to_nchw(target[start : start + self.chunk], self.device)
                values.append(lpips_distance(backbone, linear, x, y))
        return FrameScores(torch.cat(values).double().cpu().numpy())
