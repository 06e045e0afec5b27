"""Pack subject folders compactly for the GPU machine (64 MiB carry limit) and unpack them there.

subset: a normal subject folder with the train frames and an evenly spaced subset of the val
        frames (renumbered; per-frame arrays and files sliced alike), e.g. the frames a GPU fit is scored on;
        meta.json's extra.subset_of names the source frames.
pack:   RGB frames -> JPEG (quality 95), normal maps -> lossless WebP, meshes dropped (they are only needed for scoring, which
        runs on the CPU side), everything else copied as is; with --res the images are resized and
        intrinsics and landmarks scaled to match (head-model parameters are resolution-free, so
        tracking a packed copy at a lower resolution gives parameters for the original).
unpack: JPEG / WebP -> PNG, so the packed subject is a normal subject folder again.

    python scripts/pack_subject.py subset data/real/d3 data/subsets/real/d3 --val-frames 24
    python scripts/pack_subject.py pack data/subsets/real/d3 .carry/real/d3
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

from nha_bench.datasets.format import Subject, encode_png, frame_name
from nha_bench.method import PER_FRAME_TRACKING

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
            elif folder == "normal":  # lossless WebP: a third smaller than PNG, same pixels
                iio.imwrite(dst / folder / f"{png.stem}.webp", _resized(image, res, IMAGE_FOLDERS[folder]),
                            extension=".webp", lossless=True)
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


def subset(src: Path, dst: Path, n_val: int) -> None:
    """Copy ``src`` to ``dst`` with its train frames and ``n_val`` evenly spaced val frames,
    renumbered 0..n-1 (per-frame arrays sliced alike), so that it is a valid subject again."""
    subject = Subject(src)
    meta = json.loads((src / "meta.json").read_text())
    val = subject.split("val")
    keep_val = [val[int(i)] for i in np.linspace(0, len(val) - 1, min(n_val, len(val)))]
    train = subject.split("train")
    order = train + keep_val
    if dst.exists():
        raise SystemExit(f"{dst} exists: remove it first")
    dst.mkdir(parents=True)
    for field in ("rgb", "mask", "parsing", "normal", "mesh"):
        if field not in meta["fields"]:
            continue
        (dst / field).mkdir()
        for new, old in enumerate(order):
            source = subject.path(field, old)
            shutil.copy2(source, dst / field / f"{frame_name(new)}{source.suffix}")
    np.save(dst / "landmarks.npy", subject.landmarks()[order])
    if (src / "tracking.npz").is_file():
        tracking = dict(np.load(src / "tracking.npz"))
        position = {old: new for new, old in enumerate(order)}
        if "keyframes" in tracking:  # frame numbers: renumbered, dropped where the frame is not kept
            tracking["keyframes"] = np.array([position[k] for k in tracking["keyframes"].tolist() if k in position], dtype=np.int64)
        np.savez(dst / "tracking.npz", **{k: v[order] if k in PER_FRAME_TRACKING else v for k, v in tracking.items()})
    cameras = subject.cameras()  # every array is per frame (format.py)
    if cameras is not None:
        np.savez(dst / "cameras.npz", **{k: v[order] for k, v in cameras.items()})
    meta["n_frames"] = len(order)
    meta["splits"] = {"train": list(range(len(train))), "val": list(range(len(train), len(order)))}
    meta.setdefault("extra", {})["subset_of"] = {"root": str(src), "frames": order}
    (dst / "meta.json").write_text(json.dumps(meta, indent=1))
    size = sum(f.stat().st_size for f in dst.rglob("*") if f.is_file())
    print(f"subset: {len(train)} train + {len(keep_val)} val frames, {size / 2**20:.1f} MiB -> {dst}")


def unpack(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` turning the JPEG frames back into PNG."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("rgb", "*.webp"), dirs_exist_ok=True)
    for folder, pattern in (("rgb", "*.jpg"), ("normal", "*.webp")):
        for packed in sorted((src / folder).glob(pattern)):
            (dst / folder).mkdir(parents=True, exist_ok=True)
            (dst / folder / f"{packed.stem}.png").write_bytes(encode_png(iio.imread(packed)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["subset", "pack", "unpack"])
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--res", type=int, default=None, help="pack: resize square frames to this size")
    parser.add_argument("--quality", type=int, default=95, help="pack: JPEG quality of the RGB frames")
    parser.add_argument("--val-frames", type=int, default=24, help="subset: evenly spaced val frames kept")
    args = parser.parse_args()
    if args.action == "subset":
        subset(args.src, args.dst, args.val_frames)
    elif args.action == "pack":
        pack(args.src, args.dst, quality=args.quality, res=args.res)
    else:
        unpack(args.src, args.dst)


if __name__ == "__main__":
    main()
