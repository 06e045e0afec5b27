"""Contact sheets of a prepared subject: frame | mask | parsing (colour-coded) | landmarks | tracked mesh."""

from __future__ import annotations

from pathlib import Path

import cv2
import imageio.v3 as iio
import numpy as np

from nha_bench.datasets.format import LABEL_COLOURS, Subject


def _landmark_overlay(rgb: np.ndarray, lm: np.ndarray) -> np.ndarray:
    out = rgb.copy()
    r = max(1, rgb.shape[0] // 200)
    groups = [(0, 17), (17, 22), (22, 27), (27, 31), (31, 36), (36, 42), (42, 48), (48, 60), (60, 68)]
    for a, b in groups:  # iBUG groups as polylines, so a wrong index map shows as a crossed line
        pts = np.round(lm[a:b, :2] * 16).astype(np.int32)
        closed = a >= 36
        cv2.polylines(out, [pts], closed, (0, 255, 0), 1, cv2.LINE_AA, shift=4)
    for k, (x, y) in enumerate(lm[:, :2]):
        cv2.circle(out, (int(round(x * 16)), int(round(y * 16))), r * 16, (255, 0, 0) if k != 30 else (255, 255, 0), -1, cv2.LINE_AA, shift=4)
    return out


def tracked_vertices(subject: Subject, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Projected pixel positions (len(frames), V, 2) of the tracked head mesh and its faces (F, 3),
    or None when the subject has no tracking.npz."""
    if not (subject.root / "tracking.npz").is_file():
        return None
    import torch

    from nha_bench.head import load_head_model
    from nha_bench.head.base import HeadParams
    from nha_bench.tracking import head_vertices_camera

    data = subject.tracking()
    model = load_head_model(str(data["model"]))
    t = lambda a: torch.as_tensor(np.asarray(a, np.float32))  # noqa: E731
    params = HeadParams(
        t(np.repeat(data["shape"][None], len(frames), 0)), t(data["expr"][frames]), t(data["pose"][frames]),
        t(data["translation"][frames]),
    )
    with torch.no_grad():
        verts = head_vertices_camera(model, params).numpy()
    uvw = verts @ subject.meta.K.T.astype(np.float64)
    return uvw[..., :2] / uvw[..., 2:3], model.faces.numpy()


def _mesh_overlay(rgb: np.ndarray, uv: np.ndarray, faces: np.ndarray) -> np.ndarray:
    faces = faces[:: max(1, len(faces) // 1500)]  # a sparse wireframe: every face would paint the tile solid
    tris = np.round(uv[faces] * 16).astype(np.int32)  # (F, 3, 2), shift-4 fixed point
    out = rgb.copy()
    cv2.polylines(out, list(tris), True, (0, 255, 255), 1, cv2.LINE_AA, shift=4)
    return (0.5 * rgb + 0.5 * out).astype(np.uint8)


def contact_sheet(root: str | Path, n_rows: int = 4, tile: int = 192) -> np.ndarray:
    """An (n_rows * tile, C * tile, 3) uint8 sheet of evenly spaced frames of the subject at ``root``:
    frame | mask | parsing | landmarks, plus the tracked mesh wireframe when tracking.npz exists."""
    subject = Subject(root)
    lms = subject.landmarks()
    frames = np.linspace(0, subject.meta.n_frames - 1, n_rows).round().astype(int)
    tracked = tracked_vertices(subject, frames)
    rows = []
    for row_index, i in enumerate(frames):
        rgb = (subject.rgb(i) * 255).round().astype(np.uint8)
        mask = np.repeat(subject.mask(i)[..., None].astype(np.uint8) * 255, 3, axis=2)
        parsing = LABEL_COLOURS[subject.parsing(i)]
        tiles = [rgb, mask, (0.35 * rgb + 0.65 * parsing).astype(np.uint8), _landmark_overlay(rgb, lms[i])]
        if tracked is not None:
            tiles.append(_mesh_overlay(rgb, tracked[0][row_index], tracked[1]))
        row = np.concatenate([cv2.resize(t, (tile, tile), interpolation=cv2.INTER_AREA) for t in tiles], axis=1)
        cv2.putText(row, f"frame {i}", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1, cv2.LINE_AA)
        rows.append(row)
    return np.concatenate(rows, axis=0)


def write_contact_sheet(root: str | Path, path: str | Path, n_rows: int = 4, tile: int = 192) -> Path:
    """Write the contact sheet of ``root`` as a PNG at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, contact_sheet(root, n_rows, tile))
    return path
