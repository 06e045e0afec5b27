"""Pack subject folders compactly for the GPU machine (64 MiB carry limit) and unpack them there.

pack:   RGB frames -> JPEG (quality 95), meshes dropped (they are only needed for scoring, which
        runs on the CPU side), everything else copied as is; with --res the images are resized and
        intrinsics and landmarks scaled to match (head-model parameters are resolution-free, so
        tracking a packed copy at a lower resolution gives parameters for the original).
unpack: JPEG -> PNG, so the packed subject is a normal subject folder again.

    python scripts/pack_subject.py pack data/real/d3 .carry/d3
    python scripts/pack_subject.py unpack .carry/d3 /tmp/data/d3
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from PIL import Image

from nha_bench.datasets.format import encode_png

IMAGE_FOLDERS = {"mask": Image.NEAREST, "parsing": Image.NEAREST, "normal": Image.NEAREST}


def _resized(image: np.ndarray, res: int | None, resample: int) -> np.ndarray:
    if res is None or image.shape[0] == res:
        return image
    return np.asarray(Image.fromarray(image).resize((res, res), resample))


def pack(src: Path, dst: Path, quality: int = 95, res: int | None = None) -> None:
    """Copy ``src`` to ``dst`` with RGB as JPEG, without meshes, optionally at ``res`` x ``res``."""
    folders = [f for f in IMAGE_FOLDERS if (src / f).is_dir()]
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("rgb", "mesh", ".*", *folders), dirs_exist_ok=True)
    for folder in ["rgb", *folders]:
        (dst / folder).mkdir(parents=True, exist_ok=True)
        for png in sorted((src / folder).glob("*.png")):
            image = iio.imread(png)
            if folder == "rgb":
                rgb = _resized(image[..., :3], res, Image.LANCZOS)
                iio.imwrite(dst / "rgb" / f"{png.stem}.jpg", rgb, extension=".jpg", quality=quality)
            else:
                (dst / folder / png.name).write_bytes(encode_png(_resized(image, res, IMAGE_FOLDERS[folder])))
    meta = json.loads((src / "meta.json").read_text())
    if res is not None and res != meta["width"]:
        if meta["width"] != meta["height"]:
            raise SystemExit(f"{src}: --res needs square frames")
        scale = res / meta["width"]
        K = np.asarray(meta["intrinsics"], dtype=np.float64)
        K[:2] *= scale
        meta.update(width=res, height=res, intrinsics=K.tolist())
        landmarks = np.load(src / "landmarks.npy")
        landmarks[..., :2] *= scale
        np.save(dst / "landmarks.npy", landmarks)
    meta["fields"] = [f for f in meta["fields"] if f != "mesh"]
    (dst / "meta.json").write_text(json.dumps(meta, indent=1))


def unpack(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` turning the JPEG frames back into PNG."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("rgb"), dirs_exist_ok=True)
    (dst / "rgb").mkdir(parents=True, exist_ok=True)
    for jpg in sorted((src / "rgb").glob("*.jpg")):
        (dst / "rgb" / f"{jpg.stem}.png").write_bytes(encode_png(iio.imread(jpg)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["pack", "unpack"])
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--res", type=int, default=None, help="pack: resize square frames to this size")
    parser.add_argument("--quality", type=int, default=95, help="pack: JPEG quality of the RGB frames")
    args = parser.parse_args()
    if args.action == "pack":
        pack(args.src, args.dst, quality=args.quality, res=args.res)
    else:
        unpack(args.src, args.dst)


if __name__ == "__main__":
    main()
