"""The on-disk subject format: one folder per subject, read, written and validated here.

```
SUBJECT/
  meta.json        fps, width, height, intrinsics (3x3, pixels), n_frames, splits, source,
                   license, units ("mm"), models (which model made landmarks/parsing/...),
                   fields (which per-frame folders exist)
  rgb/000000.png       8-bit RGB
  mask/000000.png      8-bit, foreground > 127
  parsing/000000.png   8-bit labels, see LABELS
  normal/000000.png    8-bit RGB camera-space normal, n = png / 127.5 - 1 (0 outside the head)
  mesh/000000.npz      GT mesh, mm, camera frame, vertex masks "face"/"head" (skin) and optional "hair" (nha_bench.mesh.Mesh)
  landmarks.npy        (N, 68, 3) float32: x, y in pixels, visibility/confidence in [0, 1]
  tracking.npz         per-frame head-model parameters: shape (n_shape,), expr (N, n_expr),
                       pose (N, 15), translation (N, 3) in metres, model (str)
  cameras.npz          optional per-frame extrinsics: R (N, 3, 3), t (N, 3) world->camera, metres
```
Camera convention: OpenCV (x right, y down, z forward), pixel centres at +0.5.
``meta.json`` is written last, so a folder without it is an unfinished subject.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np

from nha_bench.errors import DatasetError, ExistsError
from nha_bench.mesh import Mesh

FORMAT_VERSION = 1
LABELS = {0: "background", 1: "skin_neck", 2: "eyes", 3: "ears", 4: "hair", 5: "mouth_interior", 6: "clothes"}
LABEL_COLOURS = np.array(
    [[0, 0, 0], [230, 180, 150], [0, 0, 255], [0, 255, 0], [120, 60, 20], [255, 0, 0], [128, 128, 128]], np.uint8
)
"""RGB per parsing label (index = label): the one palette of every image that colours parsing maps."""
IMAGE_FIELDS = ("rgb", "mask", "parsing", "normal")
FRAME_FIELDS = IMAGE_FIELDS + ("mesh",)
REQUIRED_FIELDS = ("rgb", "mask")


def frame_name(index: int) -> str:
    """File stem of frame ``index`` (zero-padded to six digits)."""
    return f"{index:06d}"


@dataclass
class SubjectMeta:
    """Contents of ``meta.json``."""

    subject: str
    dataset: str
    fps: float
    width: int
    height: int
    intrinsics: list[list[float]]
    n_frames: int
    splits: dict[str, list[int]]
    source: str
    license: str
    fields: list[str]
    units: str = "mm"
    models: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def K(self) -> np.ndarray:
        """Intrinsics as a (3, 3) float32 array."""
        return np.asarray(self.intrinsics, dtype=np.float32)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give them the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes at zlib level 1: ~3x faster than the default for ~20% larger files."""
    return iio.imwrite("<bytes>", array, extension=".png", compress_level=1)


def encode_normal(normal: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Unit normals (H, W, 3) -> 8-bit RGB; pixels outside ``mask`` become 0."""
    png = np.clip(np.round((normal + 1.0) * 127.5), 0, 255).astype(np.uint8)
    if mask is not None:
        png[~mask] = 0
    return png


def decode_normal(png: np.ndarray) -> np.ndarray:
    """8-bit RGB -> unit normals (H, W, 3) float32; all-zero pixels stay zero."""
    n = png.astype(np.float32) / 127.5 - 1.0
    valid = png.any(axis=-1, keepdims=True)
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    return np.where(valid, n / np.maximum(norm, 1e-8), 0.0).astype(np.float32)


class Subject:
    """Read access to one subject folder; every error names the file and the fix."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        meta_path = self.root / "meta.json"
        if not self.root.is_dir():
            raise DatasetError("subject folder does not exist", self.root, fix="check the path")
        if not meta_path.is_file():
            raise DatasetError(
                "meta.json is missing (unfinished or not a subject folder)",
                meta_path,
                fix="re-run the command that generates this subject",
            )
        try:
            raw = json.loads(meta_path.read_text())
            self.meta = SubjectMeta(**raw)
        except (json.JSONDecodeError, TypeError) as exc:
            raise DatasetError(f"meta.json is not valid ({exc})", meta_path, fix="regenerate the subject") from exc
        self._landmarks: np.ndarray | None = None

    @property
    def name(self) -> str:
        return self.meta.subject

    def has(self, field_name: str) -> bool:
        """Whether the subject provides a per-frame field (or landmarks/tracking/cameras)."""
        if field_name in FRAME_FIELDS:
            return field_name in self.meta.fields
        return (self.root / f"{field_name}.npy").is_file() or (self.root / f"{field_name}.npz").is_file()

    def split(self, name: str) -> list[int]:
        """Frame indices of split ``name``."""
        if name not in self.meta.splits:
            raise DatasetError(
                f"split {name!r} not in meta.json (has {sorted(self.meta.splits)})", self.root / "meta.json"
            )
        return list(self.meta.splits[name])

    def path(self, field_name: str, index: int) -> Path:
        suffix = ".npz" if field_name == "mesh" else ".png"
        return self.root / field_name / f"{frame_name(index)}{suffix}"

    def _read_image(self, field_name: str, index: int) -> np.ndarray:
        path = self.path(field_name, index)
        if not path.is_file():
            raise DatasetError(
                f"frame {index} has no {field_name} image", path, fix="regenerate the subject or fix the splits"
            )
        try:
            image = iio.imread(path)
        except Exception as exc:  # imageio raises many types for corrupt files
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DatasetError(f"cannot decode image ({reason})", path, fix="the file is corrupt; regenerate it") from exc
        expected = (self.meta.height, self.meta.width)
        if image.shape[:2] != expected:
            raise DatasetError(
                f"image is {image.shape[1]}x{image.shape[0]}, meta.json says {expected[1]}x{expected[0]}",
                path,
                fix="all frames of a subject must have the resolution in meta.json",
            )
        return image

    def rgb(self, index: int) -> np.ndarray:
        """(H, W, 3) float32 in [0, 1]."""
        image = self._read_image("rgb", index)
        if image.ndim != 3 or image.shape[2] < 3:
            raise DatasetError(f"rgb image has shape {image.shape}, expected HxWx3", self.path("rgb", index))
        return image[..., :3].astype(np.float32) / 255.0

    def mask(self, index: int) -> np.ndarray:
        """(H, W) bool foreground mask."""
        image = self._read_image("mask", index)
        return (image if image.ndim == 2 else image[..., 0]) > 127

    def parsing(self, index: int) -> np.ndarray:
        """(H, W) uint8 labels (see LABELS)."""
        image = self._read_image("parsing", index)
        image = image if image.ndim == 2 else image[..., 0]
        if image.max() >= len(LABELS):
            raise DatasetError(f"parsing label {image.max()} is not in {LABELS}", self.path("parsing", index))
        return image.astype(np.uint8)

    def normal(self, index: int) -> np.ndarray:
        """(H, W, 3) float32 camera-space unit normals, zero outside the head."""
        return decode_normal(self._read_image("normal", index)[..., :3])

    def mesh(self, index: int) -> Mesh:
        """Ground-truth mesh of frame ``index`` (mm, camera frame)."""
        return Mesh.load(self.path("mesh", index))

    def landmarks(self) -> np.ndarray:
        """(N, 68, 3) landmarks for all frames."""
        if self._landmarks is None:
            path = self.root / "landmarks.npy"
            if not path.is_file():
                raise DatasetError("landmarks.npy is missing", path, fix="regenerate the subject")
            try:
                self._landmarks = np.load(path)
            except ValueError as exc:
                raise DatasetError(f"cannot read landmarks ({exc})", path) from exc
        return self._landmarks

    def tracking(self) -> dict[str, np.ndarray]:
        """Per-frame head-model parameters (see module docstring)."""
        return _load_npz(self.root / "tracking.npz", "run the tracker (`nha-bench data prepare`)")

    def cameras(self) -> dict[str, np.ndarray] | None:
        """Per-frame extrinsics if the subject has them."""
        path = self.root / "cameras.npz"
        return _load_npz(path, "") if path.is_file() else None


def _load_npz(path: Path, fix: str) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DatasetError(f"{path.name} is missing", path, fix=fix or None)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read {path.name} ({exc})", path, fix="regenerate it") from exc


class SubjectWriter:
    """Writes a subject folder frame by frame; resumable, and ``meta.json`` comes last."""

    def __init__(self, root: str | Path, force: bool = False):
        self.root = Path(root)
        if (self.root / "meta.json").exists() and not force:
            raise ExistsError("subject already exists", self.root, fix="pass --force to overwrite it")
        self.root.mkdir(parents=True, exist_ok=True)

    def has_frame(self, index: int, fields: tuple[str, ...]) -> bool:
        """True when every file of ``fields`` for frame ``index`` exists (lets a killed run resume)."""
        suffix = {"mesh": ".npz"}
        return all((self.root / f / f"{frame_name(index)}{suffix.get(f, '.png')}").is_file() for f in fields)

    def write_frame(
        self,
        index: int,
        rgb: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        parsing: np.ndarray | None = None,
        normal: np.ndarray | None = None,
        mesh: Mesh | None = None,
    ) -> None:
        """Write the given per-frame data. Images: rgb float [0,1] or uint8, mask bool, parsing uint8,
        normal unit vectors (H, W, 3) with zeros outside the head."""
        name = frame_name(index)
        if rgb is not None:
            data = rgb if rgb.dtype == np.uint8 else np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)
            atomic_write_bytes(self.root / "rgb" / f"{name}.png", encode_png(data[..., :3]))
        if mask is not None:
            atomic_write_bytes(self.root / "mask" / f"{name}.png", encode_png(mask.astype(np.uint8) * 255))
        if parsing is not None:
            atomic_write_bytes(self.root / "parsing" / f"{name}.png", encode_png(parsing.astype(np.uint8)))
        if normal is not None:
            valid = np.linalg.norm(normal, axis=-1) > 0.5
            atomic_write_bytes(self.root / "normal" / f"{name}.png", encode_png(encode_normal(normal, valid)))
        if mesh is not None:
            target = self.root / "mesh" / f"{name}.npz"
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{name}.tmp.npz")
            mesh.check(target).save(tmp)
            os.replace(tmp, target)

    def write_array(self, name: str, array: np.ndarray) -> None:
        """Write a whole-subject ``.npy`` array (e.g. ``landmarks``)."""
        tmp = self.root / f".{name}.tmp.npy"
        np.save(tmp, array)
        os.replace(tmp, self.root / f"{name}.npy")

    def write_arrays(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        """Write a whole-subject ``.npz`` (e.g. ``tracking``, ``cameras``)."""
        tmp = self.root / f".{name}.tmp.npz"
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, self.root / f"{name}.npz")

    def finish(self, meta: SubjectMeta) -> Subject:
        """Write ``meta.json`` (marking the subject complete) and return a reader for it."""
        atomic_write_bytes(self.root / "meta.json", json.dumps(asdict(meta), indent=1).encode())
        return Subject(self.root)
