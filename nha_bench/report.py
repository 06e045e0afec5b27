"""The HTML report: tables, image grids (GT | each method), mesh error maps and training /
quality-vs-time curves, in one file or beside its image files. Images come from the seed-0 fits
(tables use every seed)."""

from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import imageio.v3 as iio
import numpy as np

from nha_bench.datasets.format import Subject, frame_name
from nha_bench.errors import NhaBenchError
from nha_bench.results import ResultStore
from nha_bench.runner import TRAIN_LOG, read_train_log, run_folder
from nha_bench.tables import dataset_tables, display_order, method_info

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _embedded(content: np.ndarray | str, title: str) -> str:
    """An image as a PNG data URI, or SVG text as it is: the page then stands alone."""
    if isinstance(content, str):
        return content
    data = base64.b64encode(iio.imwrite("<bytes>", content, extension=".png")).decode()
    return f'<img src="data:image/png;base64,{data}" title="{html.escape(title)}">'


def image_grid(subject_root: Path, outputs: dict[str, Path], frames: int) -> tuple[np.ndarray, list[str]] | None:
    """(rows = frames, columns = GT | the rgb outputs of each entry of ``outputs`` (column name ->
    a run's outputs folder) that has them; the columns shown), or None when none has."""
    subject = Subject(subject_root)
    columns = [name for name, folder in outputs.items() if (folder / "rgb").is_dir()]
    if not columns:
        return None
    indices = subject.split("val")
    picked = [indices[int(i)] for i in np.linspace(0, len(indices) - 1, min(frames, len(indices)))]
    rows = []
    for index in picked:
        tiles = [np.round(subject.rgb(index) * 255).astype(np.uint8)]
        for name in columns:
            path = outputs[name] / "rgb" / f"{frame_name(index)}.png"
            tiles.append(iio.imread(path)[..., :3] if path.is_file() else np.zeros_like(tiles[0]))
        rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows, axis=0), columns


def training_figure(runs_dir: Path) -> Figure | None:
    """A plot of every run under ``runs_dir`` (METHOD/DATASET/SUBJECT) with a training log: the total
    loss and, where probed, the l1 of the probe test frames (tracked parameters) over fitting time
    (the quality-vs-time curve); None without any log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {}
    for log in sorted(runs_dir.glob(f"*/*/*/{TRAIN_LOG}")):
        rows = read_train_log(log.parent)
        if rows:
            curves["/".join(log.parts[-4:-1])] = rows
    if not curves:
        return None
    probed = any("probe_l1" in r for rows in curves.values() for r in rows)
    figure, axes = plt.subplots(1, 2 if probed else 1, figsize=(12 if probed else 7, 3.5), squeeze=False)
    for label, rows in curves.items():
        axes[0, 0].plot([r["elapsed_s"] for r in rows], [r["loss"] for r in rows], label=label, linewidth=0.6)
        probes = [r for r in rows if "probe_l1" in r]
        if probed and probes:
            axes[0, 1].plot([r["elapsed_s"] for r in probes], [r["probe_l1"] for r in probes], marker=".", label=label)
    axes[0, 0].set(xlabel="fitting time (s)", ylabel="total weighted loss", yscale="log")
    if probed:
        axes[0, 1].set(xlabel="fitting time (s)", ylabel="masked l1 of probe test frames")
    axes[0, -1].legend(fontsize=7)
    figure.tight_layout()
    return figure


def training_curves(runs_dir: Path) -> str | None:
    """:func:`training_figure` as SVG text, the same for the same logs."""
    figure = training_figure(runs_dir)
    if figure is None:
        return None
    import matplotlib.pyplot as plt  # after training_figure has chosen the Agg backend

    buffer = io.StringIO()
    with plt.rc_context({"svg.hashsalt": "nha-bench"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(figure)
    return buffer.getvalue()


def mesh_errors(subject_root: Path, outputs: dict[str, Path]) -> tuple[np.ndarray, dict] | None:
    """Mean per-vertex error maps (front, side) of each entry of ``outputs`` (method -> a run's
    outputs folder) with test meshes; None without any."""
    from nha_bench.mesh_error import error_sheet

    subject = Subject(subject_root)
    if "mesh" not in subject.meta.fields:
        return None
    outputs = {m: o for m, o in outputs.items() if (o / "mesh").is_dir()}
    return error_sheet(outputs, subject) if outputs else None


def write_report(results: Path, runs_dir: Path, out: Path, frames: int = 4, images: Path | None = None,
                 only_dataset: str | None = None) -> Path:
    """Write the report page to ``out`` for every dataset in ``results`` or only ``only_dataset``.
    Its images are embedded in it, or, when ``images`` is given, saved there (grids and mesh error
    maps as ``<dataset>_<subject>_*.png``, the curves as SVG) and linked from it."""

    def place(content: np.ndarray | str, name: str, title: str) -> str:
        """The page's tag of an image (PNG) or SVG text: embedded, or saved as ``images/name.png``
        / ``.svg`` and linked by its path relative to the page."""
        if images is None:
            return _embedded(content, title)
        if isinstance(content, str):
            path = images / f"{name}.svg"
            path.write_text(content)
        else:
            path = images / f"{name}.png"
            iio.imwrite(path, content)
        src = Path(os.path.relpath(path.resolve(), out.parent.resolve())).as_posix()
        return f'<img src="{html.escape(src)}" title="{html.escape(title)}">'

    records = ResultStore(results).frame()
    if only_dataset is not None and not records.empty:
        records = records[records["dataset"] == only_dataset]
    if records.empty:
        raise NhaBenchError(f"no records to report{f' for dataset {only_dataset!r}' if only_dataset else ''}", results,
                            fix="run `nha-bench run` first")
    if images is not None:
        images.mkdir(parents=True, exist_ok=True)
    parts = ["<html><head><meta charset='utf-8'><title>nha-bench report</title>",
             "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px}img{max-width:100%}</style></head><body>",
             "<h1>nha-bench report</h1>"]
    for dataset in sorted(records["dataset"].unique()):
        parts.append(f"<h2>Dataset: {html.escape(dataset)}</h2>")
        for table in dataset_tables(records[records["dataset"] == dataset]).values():
            parts.append(f"<h3>{html.escape(table.title)}</h3>{table.frame.to_html()}")
            parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in table.notes) + "</ul>")
        methods = display_order(records.loc[records["dataset"] == dataset, "method"])
        for subject in sorted(records.loc[records["dataset"] == dataset, "subject"].unique()):
            root = _subject_root(runs_dir, dataset, subject, methods)
            outputs = {m: run_folder(runs_dir, m, dataset, subject) / "outputs" for m in methods}
            shown = image_grid(root, outputs, frames) if root else None
            if shown is None:
                continue
            grid, columns = shown
            header = " | ".join(["GT"] + [method_info(m)[0] for m in columns])
            parts.append(f"<h3>{html.escape(subject)}: {html.escape(header)}</h3>"
                         f"{place(grid, f'{dataset}_{subject}_grid', subject)}")
            errors = mesh_errors(root, outputs)
            if errors is not None:
                sheet, means = errors
                rows = ", ".join(f"{method_info(m)[0]} {v:.1f} mm" for m, v in means.items())
                parts.append(f"<h4>{html.escape(subject)}: mean vertex error after alignment, rows {html.escape(rows)} "
                             f"(front, side; blue 0 mm to red 20 mm)</h4>"
                             f"{place(sheet, f'{dataset}_{subject}_mesh_error', subject + ' mesh error')}")
    curves = training_curves(runs_dir)
    if curves:
        parts.append(f"<h2>Training curves</h2>{place(curves, 'training_curves', 'training curves')}")
    parts.append("</body></html>")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts))
    return out


def _subject_root(runs_dir: Path, dataset: str, subject: str, methods: list[str]) -> Path | None:
    """The dataset folder of a subject, as recorded by the runner in ``done.json``."""
    for method in methods:
        done = run_folder(runs_dir, method, dataset, subject) / "done.json"
        if done.is_file():
            root = json.loads(done.read_text()).get("subject_root")
            if root:
                return Path(root)
    return None
