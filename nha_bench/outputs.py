"""A method's outputs on disk: the folder every method's renders are scored from.

Layout (named like the dataset's test split): ``rgb/000123.png``, optional ``normal/000123.png``
(8-bit encoded as in the dataset format) and ``mesh/000123.npz`` (mm, camera frame). Native
methods write it through :func:`write_outputs`; external methods (DVP, FOMM, ...) provide it
themselves and are checked by :func:`check_outputs` for count, size and alignment.
"""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np

from nha_bench.datasets.format import Subject, atomic_write_bytes, decode_normal, encode_normal, encode_png, frame_name
from nha_bench.errors import DatasetError
from nha_bench.mesh import Mesh
from nha_bench.method import Renders


def write_outputs(directory: Path, renders: Renders) -> None:
    """Write ``renders`` under ``directory`` (atomic per file)."""
    for position, index in enumerate(renders.indices):
        name = frame_name(index)
        rgb = np.clip(np.round(renders.rgb[position] * 255), 0, 255).astype(np.uint8)
        atomic_write_bytes(directory / "rgb" / f"{name}.png", encode_png(rgb))
        if renders.normal is not None:
            normal = renders.normal[position]
            png = encode_normal(normal, np.linalg.norm(normal, axis=-1) > 0.5)
            atomic_write_bytes(directory / "normal" / f"{name}.png", encode_png(png))
        if renders.meshes is not None:
            (directory / "mesh").mkdir(parents=True, exist_ok=True)
            renders.meshes[position].save(directory / "mesh" / f"{name}.npz")


def available_outputs(directory: Path) -> set[str]:
    """Which of rgb/normal/mesh the folder has."""
    return {kind for kind in ("rgb", "normal", "mesh") if (directory / kind).is_dir()}


def check_outputs(directory: Path, subject: Subject, split: str) -> set[str]:
    """Check that every test frame has an output of the dataset's size; return the output kinds.

    Raises DatasetError naming the first missing or wrongly sized file, and lists extra files.
    """
    kinds = available_outputs(directory)
    if "rgb" not in kinds:
        raise DatasetError("outputs folder has no rgb/ folder", directory, fix="render the test split first")
    expected = subject.split(split)
    for kind in kinds:
        suffix = ".npz" if kind == "mesh" else ".png"
        names = {p.stem for p in (directory / kind).glob(f"*{suffix}")}
        missing = [i for i in expected if frame_name(i) not in names]
        if missing:
            raise DatasetError(
                f"{len(missing)} of {len(expected)} {split} frames have no {kind} output (first: {frame_name(missing[0])})",
                directory / kind,
                fix=f"name files like the test split, e.g. {frame_name(expected[0])}{suffix}",
            )
    first = read_image(directory / "rgb" / f"{frame_name(expected[0])}.png")
    if first.shape[:2] != (subject.meta.height, subject.meta.width):
        raise DatasetError(
            f"outputs are {first.shape[1]}x{first.shape[0]}, the dataset is {subject.meta.width}x{subject.meta.height}",
            directory / "rgb",
            fix="render at the dataset's resolution (the protocol never resizes)",
        )
    return kinds


def read_image(path: Path) -> np.ndarray:
    """Read an 8-bit image; errors name the file."""
    if not path.is_file():
        raise DatasetError("output image is missing", path)
    try:
        return iio.imread(path)
    except Exception as exc:  # imageio raises many types for corrupt files
        raise DatasetError(f"cannot decode image ({str(exc).splitlines()[0]})", path, fix="re-render it") from exc


def read_rgb(directory: Path, index: int, size: tuple[int, int]) -> np.ndarray:
    """Predicted RGB of frame ``index`` as float32 [0, 1]; the size must match the dataset."""
    path = directory / "rgb" / f"{frame_name(index)}.png"
    image = read_image(path)
    if image.shape[:2] != size:
        raise DatasetError(f"output is {image.shape[1]}x{image.shape[0]}, expected {size[1]}x{size[0]}", path)
    return image[..., :3].astype(np.float32) / 255.0


def read_normal(directory: Path, index: int) -> np.ndarray:
    """Predicted camera-space normals of frame ``index``."""
    return decode_normal(read_image(directory / "normal" / f"{frame_name(index)}.png")[..., :3])


def read_mesh(directory: Path, index: int) -> Mesh:
    """Predicted mesh of frame ``index``."""
    return Mesh.load(directory / "mesh" / f"{frame_name(index)}.npz")
