"""BiSeNet face parsing (zllrunning/face-parsing.PyTorch, weights file ``79999_iter.pth``),
re-implemented in torch without torchvision; module names match that checkpoint's state dict.
Its 19 CelebAMask-HQ classes are mapped to our 7 labels by CELEBAMASK_TO_OURS."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nha_bench.errors import UnavailableError

CELEBAMASK_CLASSES = (
    "background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r",
    "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat",
)
# brows, nose, lips, glasses (over the skin around the eyes) -> skin; earrings -> ears;
# necklace -> clothes; hat -> hair (head covering, rendered with the head)
CELEBAMASK_TO_OURS = np.array([0, 1, 1, 1, 2, 2, 1, 3, 3, 3, 1, 5, 1, 1, 1, 6, 6, 4, 4], dtype=np.uint8)
MEAN = (0.485, 0.456, 0.406)  # ImageNet normalisation used when the checkpoint was trained
STD = (0.229, 0.224, 0.225)
INPUT_SIZE = 512
MODEL_ID = "BiSeNet face-parsing.PyTorch (zllrunning), 19 CelebAMask-HQ classes -> 7"


class ConvBNReLU(nn.Module):
    def __init__(self, cin: int, cout: int, ks: int = 3, stride: int = 1, padding: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, ks, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if cin != cout or stride != 1:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(shortcut + residual)


def _layer(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1))


class Resnet18(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _layer(64, 64, 1)
        self.layer2 = _layer(64, 128, 2)
        self.layer3 = _layer(128, 256, 2)
        self.layer4 = _layer(256, 512, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.layer1(self.maxpool(F.relu(self.bn1(self.conv1(x)))))
        feat8 = self.layer2(x)
        feat16 = self.layer3(feat8)
        return feat8, feat16, self.layer4(feat16)


class AttentionRefinementModule(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = ConvBNReLU(cin, cout)
        self.conv_atten = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x)
        return feat * torch.sigmoid(self.bn_atten(self.conv_atten(F.adaptive_avg_pool2d(feat, 1))))


class ContextPath(nn.Module):
    def __init__(self):
        super().__init__()
        self.resnet = Resnet18()
        self.arm16 = AttentionRefinementModule(256, 128)
        self.arm32 = AttentionRefinementModule(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128)
        self.conv_head16 = ConvBNReLU(128, 128)
        self.conv_avg = ConvBNReLU(512, 128, ks=1, padding=0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feat8, feat16, feat32 = self.resnet(x)
        avg = self.conv_avg(F.adaptive_avg_pool2d(feat32, 1))
        feat32_sum = self.arm32(feat32) + F.interpolate(avg, feat32.shape[2:], mode="nearest")
        feat32_up = self.conv_head32(F.interpolate(feat32_sum, feat16.shape[2:], mode="nearest"))
        feat16_sum = self.arm16(feat16) + feat32_up
        feat16_up = self.conv_head16(F.interpolate(feat16_sum, feat8.shape[2:], mode="nearest"))
        return feat8, feat16_up, feat32_up


class FeatureFusionModule(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.convblk = ConvBNReLU(cin, cout, ks=1, padding=0)
        self.conv1 = nn.Conv2d(cout, cout // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(cout // 4, cout, 1, bias=False)

    def forward(self, fsp: torch.Tensor, fcp: torch.Tensor) -> torch.Tensor:
        feat = self.convblk(torch.cat([fsp, fcp], dim=1))
        atten = torch.sigmoid(self.conv2(F.relu(self.conv1(F.adaptive_avg_pool2d(feat, 1)))))
        return feat * atten + feat


class BiSeNetOutput(nn.Module):
    def __init__(self, cin: int, mid: int, n_classes: int):
        super().__init__()
        self.conv = ConvBNReLU(cin, mid)
        self.conv_out = nn.Conv2d(mid, n_classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    """Inference part of the checkpoint's network (the two auxiliary heads are kept so the state
    dict loads strictly, but only the main head is evaluated)."""

    def __init__(self, n_classes: int = 19):
        super().__init__()
        self.cp = ContextPath()
        self.ffm = FeatureFusionModule(256, 256)
        self.conv_out = BiSeNetOutput(256, 256, n_classes)
        self.conv_out16 = BiSeNetOutput(128, 64, n_classes)
        self.conv_out32 = BiSeNetOutput(128, 64, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat8, feat_cp8, _ = self.cp(x)
        out = self.conv_out(self.ffm(feat8, feat_cp8))
        return F.interpolate(out, x.shape[2:], mode="bilinear", align_corners=True)


class BiSeNetParser:
    """Loads ``79999_iter.pth`` (or any state dict of the same network) and parses RGB crops."""

    model_id = MODEL_ID

    def __init__(self, weights: Path, device: str = "cpu"):
        weights = Path(weights)
        if not weights.is_file():
            raise UnavailableError(
                "BiSeNet weights file not found", weights,
                fix="download 79999_iter.pth from zllrunning/face-parsing.PyTorch, or omit --parsing-weights",
            )
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for non-checkpoint files
            raise UnavailableError(f"cannot read BiSeNet weights ({exc})", weights, fix="pass the 79999_iter.pth file") from exc
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        state = {k.removeprefix("module."): v for k, v in state.items()}
        self.net = BiSeNet(19)
        try:
            self.net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[1] if len(str(exc).splitlines()) > 1 else str(exc)
            raise UnavailableError(
                f"weights do not fit the BiSeNet face-parsing network ({first.strip()[:200]})", weights,
                fix="pass the 79999_iter.pth checkpoint of zllrunning/face-parsing.PyTorch",
            ) from exc
        self.net.eval().to(device)
        self.device = device
        self.weights = weights

    @torch.no_grad()
    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W) uint8 labels (ours) of an RGB uint8 image, run at 512x512 like the original."""
        h, w = rgb.shape[:2]
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div(255.0).to(self.device)
        x = F.interpolate(x, (INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        x = (x - torch.tensor(MEAN, device=self.device)[:, None, None]) / torch.tensor(STD, device=self.device)[:, None, None]
        logits = F.interpolate(self.net(x), (h, w), mode="bilinear", align_corners=False)
        classes = logits[0].argmax(0).cpu().numpy()
        return CELEBAMASK_TO_OURS[classes]
