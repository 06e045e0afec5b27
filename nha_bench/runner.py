"""method x dataset x subject: fit, render, evaluate, store. The runner owns the training loop.

Run folder: ``RUNS/<method>/<dataset>/<subject>/`` with ``checkpoint/`` (method state + step),
``train_log.jsonl`` (losses and elapsed seconds per step), ``outputs/`` (renders of the test
split, see :mod:`nha_bench.outputs`) and ``done.json``. A killed run resumes from its last
checkpoint; finished subjects are skipped unless ``force``.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

import nha_bench.methods  # noqa: F401  (registers the built-in methods)
from nha_bench.datasets.format import Subject
from nha_bench.evaluation import evaluate_outputs
from nha_bench.method import Method, Sequence
from nha_bench.outputs import write_outputs
from nha_bench.registry import METHODS
from nha_bench.results import Record, ResultStore, git_commit, package_versions

TRAIN_SPLIT, TEST_SPLIT = "train", "val"


@dataclass
class RunSettings:
    """What a benchmark run does and where it writes."""

    preset: str = "tiny"
    runs_dir: Path = Path("runs")
    results: Path = Path("runs/results.jsonl")
    device: str = "auto"
    seed: int = 0
    force: bool = False
    checkpoint_every: int = 200
    metric_options: dict | None = None


def progress_bar(console: Console | None = None) -> Progress:
    """The progress bar style used by every long step."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def resolve_device(device: str) -> str:
    """``auto`` -> cuda when available, else cpu."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def config_hash(method: Method, preset: str) -> str:
    """Short hash of the method's resolved configuration."""
    text = json.dumps({"method": method.name, "preset": preset, "config": method.config()}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _train(method: Method, run_dir: Path, settings: RunSettings, progress: Progress, label: str) -> float:
    checkpoint = run_dir / "checkpoint"
    state_file = checkpoint / "state.json"
    start, elapsed = 0, 0.0
    if state_file.is_file():
        state = json.loads(state_file.read_text())
        method.load(checkpoint)
        start, elapsed = state["step"], state["elapsed_s"]
    total = method.num_iterations()
    task = progress.add_task(f"fit {label}", total=max(total, 1), completed=start if total else 1)
    log = (run_dir / "train_log.jsonl").open("a")
    began = time.perf_counter() - elapsed
    try:
        for step in range(start, total):
            losses = method.train_iteration(step)
            now = time.perf_counter() - began
            log.write(json.dumps({"step": step, "elapsed_s": round(now, 3), **{k: float(v) for k, v in losses.items()}}) + "\n")
            progress.advance(task)
            finished = step + 1
            if finished % settings.checkpoint_every == 0 or finished == total:
                log.flush()
                _save_checkpoint(method, checkpoint, finished, now)
    finally:
        log.close()
    return time.perf_counter() - began


def _save_checkpoint(method: Method, checkpoint: Path, step: int, elapsed: float) -> None:
    partial = checkpoint.with_name("checkpoint.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    method.save(partial)
    (partial / "state.json").write_text(json.dumps({"step": step, "elapsed_s": elapsed}))
    shutil.rmtree(checkpoint, ignore_errors=True)
    partial.rename(checkpoint)


def run_subject(method_name: str, dataset: str, subject: Subject, settings: RunSettings, console: Console) -> list[Record]:
    """Fit, render and score one method on one subject; returns the stored records."""
    run_dir = settings.runs_dir / method_name / dataset / subject.root.name
    done = run_dir / "done.json"
    if done.is_file() and not settings.force:
        console.print(f"[dim]{method_name}/{dataset}/{subject.root.name}: finished earlier, skipped (use --force to redo)[/]")
        return []
    if settings.force:
        shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(settings.device)
    method: Method = METHODS.get(method_name)()
    if method.needs_gpu(settings.preset) and device == "cpu":
        console.print(f"[yellow]warning: {method_name} preset {settings.preset!r} is meant for a GPU; running on CPU[/]")
    seed_everything(settings.seed)
    train, test = Sequence(subject, TRAIN_SPLIT), Sequence(subject, TEST_SPLIT)
    label = f"{method_name}/{subject.root.name}"
    with progress_bar(console) as progress:
        method.setup(train, settings.preset, device, settings.seed)
        fit_seconds = _train(method, run_dir, settings, progress, label)
        method.fit_frame_params(test)
        write_outputs(run_dir / "outputs", method.render(test))
        scoring = progress.add_task(f"score {label}", total=len(test))
        results, skipped = evaluate_outputs(
            run_dir / "outputs",
            subject,
            TEST_SPLIT,
            metric_options=settings.metric_options,
            on_batch=lambda n: progress.advance(scoring, n),
        )
    for item in skipped:
        console.print(f"[yellow]{label}: {item.metric} skipped: {item.reason}[/]")
    for result in results:
        if result.value is None:
            console.print(f"[yellow]{label}: {result.spec.name} unavailable: {result.unavailable_reason}[/]")
    context = {
        "method": method_name,
        "dataset": dataset,
        "subject": subject.root.name,
        "split": TEST_SPLIT,
        "preset": settings.preset,
        "config_hash": config_hash(method, settings.preset),
        "git_commit": git_commit(),
        "package_versions": package_versions(),
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
        "wall_time_s": round(fit_seconds, 2),
    }
    records = [Record.from_metric(r, context) for r in results]
    ResultStore(settings.results).append(records)
    done.write_text(json.dumps({"records": len(records), "fit_seconds": fit_seconds, "subject_root": str(subject.root.resolve())}))
    return records


def run_benchmark(methods: list[str], dataset: str, subjects: list[Subject], settings: RunSettings, console: Console) -> list[Record]:
    """Every method on every subject, in order; a killed run resumes where it stopped."""
    for name in methods:
        METHODS.get(name)  # fail early on an unknown method name
    records: list[Record] = []
    for name in methods:
        for subject in subjects:
            records += run_subject(name, dataset, subject, settings, console)
    return records
