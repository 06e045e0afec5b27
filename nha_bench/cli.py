"""The `nha-bench` command line (typer)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table as RichTable

from nha_bench.errors import NhaBenchError

app = typer.Typer(help="Benchmark and evaluation suite for monocular 4D head avatars.", no_args_is_help=True)
data_app = typer.Typer(help="Make and check datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console(soft_wrap=True)

RESULTS = typer.Option(Path("runs/results.jsonl"), "--results", help="Results store (JSONL).")


def _metric_options(csim_backend: str, arcface_onnx: Optional[Path], alexnet_weights: Optional[Path]) -> dict:
    return {
        "csim": {"recognizer": csim_backend, "arcface_onnx": arcface_onnx},
        "lpips": {"alexnet_weights": alexnet_weights},
    }


def _method_options(items: list[str]) -> dict:
    """``FIELD=JSON`` strings -> constructor keyword arguments of the methods."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            if not sep or not key:
                raise ValueError("expected FIELD=JSON")
            options[key] = json.loads(value)
        except ValueError as exc:
            raise typer.BadParameter(f"--option {item!r}: {exc}", param_hint="--option") from exc
    return options


def _fail(exc: NhaBenchError) -> None:
    console.print(f"[red]error:[/] {exc}")
    raise typer.Exit(code=2)


@app.command("list")
def list_components() -> None:
    """Methods, datasets and metrics (with direction and unit)."""
    import nha_bench.datasets  # noqa: F401
    import nha_bench.methods  # noqa: F401
    import nha_bench.metrics  # noqa: F401
    from nha_bench.methods.external import EXTERNAL_METHODS
    from nha_bench.registry import DATASETS, METHODS, METRICS

    metrics = RichTable(title="Metrics")
    for column in ("name", "better", "unit", "inputs", "description"):
        metrics.add_column(column)
    for name in METRICS.names():
        spec = METRICS.get(name).spec
        metrics.add_row(name, "higher ↑" if spec.higher_is_better else "lower ↓", spec.unit, spec.inputs, spec.description)
    methods = RichTable(title="Methods")
    for column in ("name", "kind", "outputs", "description"):
        methods.add_column(column)
    for name in METHODS.names():
        cls = METHODS.get(name)
        methods.add_row(name, "native", ",".join(sorted(cls.provides)), cls.display_name)
    for ext in EXTERNAL_METHODS.values():
        methods.add_row(ext.name, "external (score a renders folder)", "rgb", ext.display_name)
    datasets = RichTable(title="Datasets")
    datasets.add_column("name")
    datasets.add_column("description")
    for name in DATASETS.names():
        datasets.add_row(name, (DATASETS.get(name).__doc__ or "").strip().splitlines()[0])
    for table in (methods, datasets, metrics):
        console.print(table)


@app.command()
def run(
    methods: str = typer.Option("headmodel,nha", help="Comma-separated method names (see `nha-bench list`)."),
    dataset: str = typer.Option("tiny", "--dataset", "--datasets", help="tiny | synthetic | real"),
    data_root: Optional[Path] = typer.Option(None, help="Folder of the dataset's subjects (default per dataset)."),
    subjects: Optional[str] = typer.Option(None, help="Comma-separated subject folder names (default: all)."),
    preset: str = typer.Option("tiny", help="tiny (CPU, seconds) | paper (GPU, full quality)."),
    runs_dir: Path = typer.Option(Path("runs"), help="Where checkpoints, logs and renders go."),
    results: Path = RESULTS,
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    seed: int = typer.Option(0, help="Seed of the fits; records carry it, seed N > 0 fits into SUBJECT.seedN, and tables average each subject over its seeds."),
    force: bool = typer.Option(False, help="Fit subjects that finished earlier again (deletes their run folders)."),
    rescore: bool = typer.Option(False, help="Render and score finished subjects again from their checkpoints (no refit)."),
    csim_backend: str = typer.Option("dlib", help="dlib | arcface"),
    arcface_onnx: Optional[Path] = typer.Option(None, help="InsightFace ArcFace ONNX model for CSIM."),
    alexnet_weights: Optional[Path] = typer.Option(None, help="torchvision AlexNet checkpoint for LPIPS."),
    option: list[str] = typer.Option([], "--option", help="Method option FIELD=JSON (repeatable), given to each chosen method that takes FIELD, e.g. w_offset_lap=30."),
    fit_only: bool = typer.Option(False, help="Stop after fitting (incl. the test-time fit); a later run renders and scores."),
    probe_every: int = typer.Option(0, help="Log the l1 of 2 test frames every N steps (quality-vs-time curve)."),
    train_budget_s: Optional[float] = typer.Option(None, help="Stop training after this many seconds (checkpointed; run again to resume)."),
) -> None:
    """Fit and render each method on each subject, score it, store the records, print Table 2."""
    from nha_bench.datasets import load_subjects
    from nha_bench.results import ResultStore
    from nha_bench.runner import RunSettings, run_benchmark
    from nha_bench.tables import dataset_tables

    try:
        chosen = load_subjects(dataset, data_root, subjects.split(",") if subjects else None)
        settings = RunSettings(
            preset=preset,
            runs_dir=runs_dir,
            results=results,
            device=device,
            seed=seed,
            force=force,
            rescore=rescore,
            metric_options=_metric_options(csim_backend, arcface_onnx, alexnet_weights),
            method_options=_method_options(option),
            fit_only=fit_only,
            probe_every=probe_every,
            train_budget_s=train_budget_s,
        )
        run_benchmark([m for m in methods.split(",") if m], dataset, chosen, settings, console)
        if fit_only:
            return
        records = ResultStore(results).frame()
    except NhaBenchError as exc:
        _fail(exc)
    for table in dataset_tables(records[records["dataset"] == dataset]).values():
        console.print(table.markdown())


@app.command()
def evaluate(
    outputs: Path = typer.Argument(..., help="Folder with rgb/ (and normal/, mesh/) named like the test split."),
    method: str = typer.Option(..., help="Method name recorded with the scores (e.g. dvp)."),
    dataset: str = typer.Option("tiny"),
    data_root: Optional[Path] = None,
    subject: str = typer.Option(..., help="Subject folder name."),
    split: str = "val",
    results: Path = RESULTS,
    csim_backend: str = "dlib",
    arcface_onnx: Optional[Path] = None,
    alexnet_weights: Optional[Path] = None,
) -> None:
    """Score renders already on disk (external methods, or re-scoring a native run)."""
    from nha_bench.datasets import load_subjects
    from nha_bench.evaluation import evaluate_outputs
    from nha_bench.results import Record, ResultStore, provenance

    try:
        (chosen,) = load_subjects(dataset, data_root, [subject])
        scored, skipped = evaluate_outputs(outputs, chosen, split, metric_options=_metric_options(csim_backend, arcface_onnx, alexnet_weights))
    except NhaBenchError as exc:
        _fail(exc)
    context = {"method": method, "dataset": dataset, "subject": subject, "split": split, "preset": "external",
               **provenance(chosen.root), "device": "cpu"}
    records = [Record.from_metric(r, context) for r in scored]
    ResultStore(results).append(records)
    for item in skipped:
        console.print(f"[yellow]{item.metric} skipped: {item.reason}[/]")
    for r in records:
        shown = f"{r.value:.4f} {r.unit}" if r.value is not None else f"unavailable ({r.reason})"
        console.print(f"{r.metric:>15}: {shown}  [{r.backend}]")


@app.command()
def table(
    results: Path = RESULTS,
    out: Path = typer.Option(Path("reports/tables"), help="Folder for .md/.tex/.csv files."),
    dataset: Optional[str] = typer.Option(None, help="Only this dataset."),
) -> None:
    """Write the paper-style Table 1 (geometry) and Table 2 (appearance) and print them."""
    from nha_bench.results import ResultStore
    from nha_bench.tables import dataset_tables, write_tables

    try:
        records = ResultStore(results).frame()
    except NhaBenchError as exc:
        _fail(exc)
    if dataset:
        records = records[records["dataset"] == dataset]
    if records.empty:
        _fail(NhaBenchError("no records to tabulate", results, fix="run `nha-bench run` first"))
    for path in write_tables(records, out):
        console.print(f"[dim]wrote {path}[/]")
    for table in dataset_tables(records).values():
        console.print(table.markdown())


@app.command()
def report(
    results: Path = RESULTS,
    runs_dir: Path = typer.Option(Path("runs")),
    out: Path = typer.Option(Path("reports/report.html")),
    frames: int = typer.Option(4, help="Frames per subject in the image grids."),
    images: Optional[Path] = typer.Option(None, help="Save the images here (grids and mesh error maps as PNG, curves as SVG) and link them from the page instead of embedding them."),
    dataset: Optional[str] = typer.Option(None, help="Only this dataset."),
) -> None:
    """An HTML page with the tables, image grids (GT | methods), mesh error maps and curves."""
    from nha_bench.report import write_report

    try:
        write_report(results, runs_dir, out, frames, images, only_dataset=dataset)
    except NhaBenchError as exc:
        _fail(exc)
    console.print(f"wrote {out}")


@app.command()
def check(
    reference: Path = typer.Option(..., help="Reference scores (reports/reference/*.json)."),
    results: Path = RESULTS,
    write: bool = typer.Option(
        False,
        help="Write the current scores as the new reference instead (an existing reference keeps its "
        "command and tolerances).",
    ),
) -> None:
    """Compare current scores with reference scores; exit 1 with a readable diff on regression."""
    from nha_bench.reference import compare, load_reference, reference_from
    from nha_bench.results import ResultStore, git_commit

    try:
        records = ResultStore(results).frame()
        if write:
            document = reference_from(records, "nha-bench " + " ".join(shlex.quote(a) for a in sys.argv[1:]), git_commit())
            if reference.is_file():  # how the results are made and how strict the check is outlive a rewrite
                previous = load_reference(reference)
                document.update(command=previous.get("command", document["command"]), tolerances=previous["tolerances"])
            reference.parent.mkdir(parents=True, exist_ok=True)
            reference.write_text(json.dumps(document, indent=1) + "\n")
            console.print(f"wrote {reference} ({len(records)} scores)")
            return
        differences = compare(records, load_reference(reference))
    except NhaBenchError as exc:
        _fail(exc)
    if differences:
        console.print(f"[red]{len(differences)} score(s) differ from {reference}:[/]")
        for diff in differences:
            console.print(f"  {diff}")
        raise typer.Exit(code=1)
    console.print(f"[green]all scores within tolerance of {reference}[/]")


def _subject_folders(path: Path) -> list[Path]:
    """The subject folders at or below ``path``; exits with an error when there is none."""
    from nha_bench.datasets import find_subjects

    subjects = find_subjects(path)
    if not subjects:
        _fail(NhaBenchError("no subject folder (with meta.json) found", path, fix="point to a subject or dataset folder"))
    return subjects


@data_app.command("synth")
def data_synth(
    out: Path = typer.Option(..., help="Output folder (one subject folder per subject)."),
    subjects: int = typer.Option(4, help="Number of subjects (alternating female/male)."),
    train: int = typer.Option(200, help="Training frames per subject."),
    val: int = typer.Option(210, help="Validation frames per subject."),
    res: int = typer.Option(512, help="Square resolution in pixels."),
    seed: int = 0,
    workers: int = typer.Option(2, help="Parallel render processes."),
    samples: int = typer.Option(16, help="Cycles samples per pixel."),
    turn_yaw: Optional[float] = typer.Option(
        None, help="Peak yaw (degrees, 0-90) of the head turn that opens the training frames (else the dataset's own)."),
    data_root: Optional[Path] = typer.Option(None, help="MakeHuman data root (else $NHA_BENCH_MAKEHUMAN_DATA or the cache)."),
    force: bool = typer.Option(False, help="Overwrite finished subjects."),
) -> None:
    """Render the synthetic MakeHuman head dataset (needs the `synth` extra: bpy + makehuman-mcp)."""
    try:
        from nha_bench.datasets.synthetic import generate

        turn = {} if turn_yaw is None else {"turn_yaw": turn_yaw}  # the default lives in the dataset's spec
        for path in generate(out, subjects=subjects, train=train, val=val, res=res, seed=seed, force=force,
                             workers=workers, data_root=data_root, samples=samples, **turn):
            console.print(f"wrote {path}")
    except NhaBenchError as exc:
        _fail(exc)


@data_app.command("prepare")
def data_prepare(
    video: Path = typer.Argument(..., help="A portrait video file."),
    out: Path = typer.Option(..., help="Output subject folder."),
    res: int = typer.Option(512, help="Square crop resolution."),
    fps: Optional[float] = typer.Option(None, help="Subsample to this frame rate."),
    split: str = typer.Option("halves", help="halves | ratio:0.8"),
    landmarks: str = typer.Option("mediapipe", help="mediapipe | dlib"),
    parsing_weights: Optional[Path] = typer.Option(None, help="BiSeNet face-parsing weights (else the face-mesh fallback)."),
    normal_weights: Optional[Path] = typer.Option(None, help="Pseudo-GT normal network weights (else no normals)."),
    track: bool = typer.Option(True, help="Run the head tracker."),
    max_frames: Optional[int] = typer.Option(None, help="Use at most this many frames."),
    focal: Optional[float] = typer.Option(None, help="Focal length of the source video in pixels (default 1.5 x longer side)."),
    device: str = typer.Option("auto", help="Device for the tracker: auto | cpu | cuda."),
    force: bool = typer.Option(False, help="Overwrite a finished subject."),
) -> None:
    """Turn a portrait video into a tracked subject (needs the `real` extra: mediapipe, dlib)."""
    try:
        from nha_bench.datasets.video import prepare
        from nha_bench.runner import resolve_device

        path = prepare(video, out, res=res, fps=fps, split=split, landmarks=landmarks, parsing_weights=parsing_weights,
                       normal_weights=normal_weights, track=track, force=force, max_frames=max_frames, focal=focal,
                       track_options={"device": resolve_device(device)})
    except NhaBenchError as exc:
        _fail(exc)
    console.print(f"wrote {path}")


@data_app.command("track")
def data_track(
    path: Path = typer.Argument(..., help="A subject folder or a folder of subjects."),
    preset: str = typer.Option("full", help="Tracker preset: tiny | full."),
    head_model: str = typer.Option("ict", help="Head model: ict | flame."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
    force: bool = typer.Option(False, help="Track again subjects that have a tracking.npz."),
) -> None:
    """Track the head model on every frame of the subject(s) and write tracking.npz (a killed run resumes)."""
    from nha_bench.errors import ExistsError
    from nha_bench.runner import resolve_device
    from nha_bench.tracking import TrackerConfig, track_subject

    try:
        config, device = TrackerConfig.preset(preset), resolve_device(device)
        for root in _subject_folders(path):
            try:
                console.print(f"wrote {track_subject(root, head_model=head_model, device=device, config=config, force=force)}")
            except ExistsError:
                console.print(f"{root}: tracked already (--force tracks it again)")
    except NhaBenchError as exc:
        _fail(exc)


@data_app.command("validate")
def data_validate(path: Path = typer.Argument(..., help="A subject folder or a folder of subjects.")) -> None:
    """List every problem of the subject folder(s), with the file it concerns."""
    from nha_bench.datasets import validate_subject

    total = 0
    for root in _subject_folders(path):
        problems = validate_subject(root)
        total += len(problems)
        status = "[green]ok[/]" if not problems else f"[red]{len(problems)} problem(s)[/]"
        console.print(f"{root}: {status}")
        for problem in problems:
            console.print(f"  {problem}")
    if total:
        raise typer.Exit(code=1)


if __name__ == "__main__":
    app()
