"""Compare nha_bench's LPIPS with the real ``lpips`` package (needs torchvision), same weights.

Both get the SAME seeded random AlexNet trunk (lpips' ``net.slice*`` are loaded from our state
dict; no download) and lpips' own v0.1 linear layers, then score a few random image pairs.
Prints per-image values and the max abs difference. Run where torchvision works:

    python scripts/gpu_lpips_check.py [--device cuda] [--n 4] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import types
from importlib.metadata import version
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _import_our_lpips() -> types.ModuleType:
    """nha_bench.metrics.lpips, imported without nha_bench/metrics/__init__.py (which loads
    every metric and their dependencies, not all present on the GPU machine)."""
    sys.path.insert(0, str(ROOT))
    if "nha_bench.metrics" not in sys.modules:
        package = types.ModuleType("nha_bench.metrics")
        package.__path__ = [str(ROOT / "nha_bench" / "metrics")]
        sys.modules["nha_bench.metrics"] = package
    import nha_bench.metrics.lpips as ours

    return ours


SLICES = ((0, 2), (2, 5), (5, 8), (8, 10), (10, 12))  # lpips.pretrained_networks.alexnet


def reference_model(state_dict: dict[str, torch.Tensor], device: torch.device):
    """lpips.LPIPS(net='alex', v0.1 linear layers) with its trunk set from ``state_dict``."""
    import lpips

    model = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
    mapped = {}
    for key, value in state_dict.items():
        _, index, param = key.split(".")
        slice_id = next(k for k, (lo, hi) in enumerate(SLICES, 1) if lo <= int(index) < hi)
        mapped[f"slice{slice_id}.{index}.{param}"] = value
    model.net.load_state_dict(mapped, strict=True)
    return model.to(device).eval()


def max_abs_difference(
    device: str = "cpu", n: int = 4, height: int = 128, width: int = 160, seed: int = 0
) -> tuple[float, torch.Tensor, torch.Tensor]:
    """(max |ours - lpips|, our values, lpips' values) on ``n`` random image pairs in [0, 1]."""
    ours = _import_our_lpips()
    dev = torch.device(device)
    state_dict = ours.random_backbone_state_dict(seed)
    linear_path, looked = ours.find_linear_weights()
    if linear_path is None:
        raise SystemExit(f"lpips linear weights not found; looked at {looked}")
    linear_sd = torch.load(linear_path, map_location="cpu", weights_only=True)
    backbone = ours.backbone_from_state_dict(state_dict).to(dev)
    linear = [linear_sd[f"lin{k}.model.1.weight"].reshape(-1).to(dev) for k in range(5)]
    reference = reference_model(state_dict, dev)
    generator = torch.Generator().manual_seed(seed + 1)
    x = torch.rand(n, 3, height, width, generator=generator)
    # y: x plus smooth and pixel noise, so that distances are neither 0 nor saturated
    y = (x + 0.2 * torch.randn(n, 3, height, width, generator=generator)).clamp(0, 1)
    x, y = x.to(dev), y.to(dev)
    with torch.no_grad():
        ours_values = ours.lpips_distance(backbone, linear, x, y).cpu()
        ref_values = reference(x, y, normalize=True).reshape(-1).cpu()
    return float((ours_values - ref_values).abs().max()), ours_values, ref_values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.backends.cudnn.allow_tf32 = False  # full fp32 convolutions on both sides
    torch.backends.cuda.matmul.allow_tf32 = False
    import lpips
    import torchvision

    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
          f"lpips {version('lpips')} from {Path(lpips.__file__).parent}")
    devices = [args.device] if args.device == "cpu" else [args.device, "cpu"]
    for device in devices:
        for height, width in ((128, 160), (256, 256), (512, 512)):
            diff, ours, ref = max_abs_difference(device, args.n, height, width, args.seed)
            print(f"device={device} size={height}x{width} n={args.n} seed={args.seed}")
            print(f"  ours  = {[round(v, 6) for v in ours.tolist()]}")
            print(f"  lpips = {[round(v, 6) for v in ref.tolist()]}")
            print(f"  max abs difference = {diff:.3e}")


if __name__ == "__main__":
    main()
