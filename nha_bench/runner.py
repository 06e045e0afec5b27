"""method x dataset x subject: fit, render, evaluate, store. The runner owns the training loop.

Run folder: ``RUNS/<method>/<dataset>/<subject>/`` with ``checkpoint/`` (method state + step),
``train_log.jsonl`` (losses and elapsed seconds per step; with ``probe_every`` also the masked l1
of a few test frames rendered with their tracked parameters, the quality-vs-time curve),
``outputs/`` (renders of the test split, see :mod:`nha_bench.outputs`) and ``done.json``. A killed
run resumes from its last checkpoint; the checkpoint written after the test-time fit marks it done
(``test_fitted``), so a fit made elsewhere (``fit_only`` on a GPU machine) is rendered and scored
by a later run without refitting. Finished subjects are skipped unless ``force`` (fit again from
scratch) or ``rescore`` (render and score again from the finished checkpoint, e.g. after a metric
or export change).
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
from nha_bench.errors import NhaBenchError
from nha_bench.evaluation import evaluate_outputs
from nha_bench.method import Method, Sequence
from nha_bench.metrics.base import ImageBatch
from nha_bench.metrics.image import L1
from nha_bench.outputs import write_outputs
from nha_bench.registry import METHODS
from nha_bench.results import Record, ResultStore, provenance

TRAIN_SPLIT, TEST_SPLIT = "train", "val"


@dataclass
class RunSettings:
    """What a benchmark run does and where it writes."""

    preset: str = "tiny"
    runs_dir: Path = Path("runs")
    results: Path = Path("runs/results.jsonl")
    device: str = "auto"
    seed: int = 0
    force: bool = False  # delete finished run folders and fit again
    rescore: bool = False  # keep finished checkpoints, render and score again
    checkpoint_every: int = 200
    metric_options: dict | None = None
    method_options: dict | None = None  # keyword arguments of the method's constructor
    fit_only: bool = False  # stop after the test-time fit's checkpoint (render and score later)
    probe_every: int = 0  # log the probe l1 every this many steps (0: never)
    train_budget_s: float | None = None  # stop training (checkpointed, resumable) after this long
    probe_frames: int = 2

    def __post_init__(self) -> None:
        if self.force and self.rescore:
            raise NhaBenchError(
                "--force and --rescore contradict each other (--force deletes the checkpoint that --rescore scores)",
                fix="--rescore to render and score finished fits again, --force to fit them again",
            )


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


TRAIN_LOG = "train_log.jsonl"
CHECKPOINT_STATE = "state.json"  # beside the method's own checkpoint files


def read_train_log(run_dir: Path) -> list[dict]:
    """The rows of a run folder's training log (one per step; empty when there is none)."""
    log = run_dir / TRAIN_LOG
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.is_file() else []


def _probe_l1(method: Method, probe: Sequence) -> float:
    """The benchmark's l1 (mean over the probe frames) of ``probe`` rendered with its tracked
    parameters."""
    renders = method.render(probe)
    batch = ImageBatch(renders.rgb, probe.load("rgb"), probe.load("mask").astype(bool))
    return float(L1().score(batch).values.mean())


def read_checkpoint_state(checkpoint: Path) -> dict:
    """The state a run's checkpoint folder was saved with (step, fitting seconds, ``test_fitted``
    once the test-time fit is done); {} when it has none yet."""
    state_file = checkpoint / CHECKPOINT_STATE
    return json.loads(state_file.read_text()) if state_file.is_file() else {}


def _train(method: Method, run_dir: Path, settings: RunSettings, progress: Progress, label: str,
           probe: Sequence) -> dict:
    """Train from the last checkpoint; returns the checkpoint state it ends with."""
    checkpoint = run_dir / "checkpoint"
    state = read_checkpoint_state(checkpoint)
    if state:
        method.load(checkpoint)
    start, elapsed = state.get("step", 0), state.get("elapsed_s", 0.0)
    total = method.num_iterations()
    task = progress.add_task(f"fit {label}", total=max(total, 1), completed=start if total else 1)
    log = (run_dir / TRAIN_LOG).open("a")
    began = time.perf_counter() - elapsed
    deadline = time.perf_counter() + settings.train_budget_s if settings.train_budget_s is not None else None
    try:
        for step in range(start, total):
            losses = method.train_iteration(step)
            now = time.perf_counter() - began
            row = {"step": step, "elapsed_s": round(now, 3), **{k: float(v) for k, v in losses.items()}}
            finished = step + 1
            if settings.probe_every and (finished % settings.probe_every == 0 or finished == total):
                paused = time.perf_counter()
                row["probe_l1"] = _probe_l1(method, probe)
                began += time.perf_counter() - paused  # probing is not fitting time
            log.write(json.dumps(row) + "\n")
            progress.advance(task)
            out_of_time = deadline is not None and time.perf_counter() > deadline
            if finished % settings.checkpoint_every == 0 or finished == total or out_of_time:
                log.flush()
                state = {"step": finished, "elapsed_s": now}
                _save_checkpoint(method, checkpoint, state)
            if out_of_time:
                break
    finally:
        log.close()
    return state


def _save_checkpoint(method: Method, checkpoint: Path, state: dict) -> None:
    partial = checkpoint.with_name("checkpoint.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    method.save(partial)
    (partial / CHECKPOINT_STATE).write_text(json.dumps(state))
    shutil.rmtree(checkpoint, ignore_errors=True)
    partial.rename(checkpoint)


def _device_name(device: str) -> str:
    return torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"


def _fit(method: Method, run_dir: Path, train: Sequence, test: Sequence, settings: RunSettings, device: str,
         progress: Progress, label: str) -> dict:
    """Train (resuming), then fit the test frames' expression/pose once; returns the final
    checkpoint state (step, fitting seconds, test-fit seconds, the device that fitted), or the
    state of an unfinished training stopped by ``train_budget_s``."""
    method.setup(train, settings.preset, device, settings.seed)
    probe = Sequence(test.subject, test.split, tuple(range(min(settings.probe_frames, len(test)))))
    state = _train(method, run_dir, settings, progress, label, probe)
    if state.get("step", 0) < method.num_iterations():  # stopped by the training budget
        return state
    if not state.get("test_fitted"):
        began = time.perf_counter()
        method.fit_frame_params(test)
        state = {"step": method.num_iterations(), "elapsed_s": state.get("elapsed_s", 0.0), "test_fitted": True,
                 "test_fit_s": round(time.perf_counter() - began, 2), "device": _device_name(device)}
        _save_checkpoint(method, run_dir / "checkpoint", state)
    return state


def run_folder(runs_dir: Path, method_name: str, dataset: str, subject_name: str, seed: int = 0) -> Path:
    """Where a fit keeps its checkpoint, log and outputs: ``METHOD/DATASET/SUBJECT`` for seed 0,
    ``METHOD/DATASET/SUBJECT.seedN`` for another seed (a fit of one seed never resumes another's)."""
    return runs_dir / method_name / dataset / (subject_name if seed == 0 else f"{subject_name}.seed{seed}")


def run_subject(method_name: str, dataset: str, subject: Subject, settings: RunSettings, console: Console) -> list[Record]:
    """Fit, render and score one method on one subject; returns the stored records."""
    run_dir = run_folder(settings.runs_dir, method_name, dataset, subject.root.name, settings.seed)
    done = run_dir / "done.json"
    if done.is_file() and not (settings.force or settings.rescore):
        console.print(f"[dim]{run_dir.relative_to(settings.runs_dir)}: finished earlier, skipped "
                      "(--rescore renders and scores it again, --force fits it again)[/]")
        return []
    if settings.force:
        shutil.rmtree(run_dir, ignore_errors=True)
    elif settings.rescore:
        shutil.rmtree(run_dir / "outputs", ignore_errors=True)
        done.unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(settings.device)
    method_class = METHODS.get(method_name)
    options = {k: v for k, v in (settings.method_options or {}).items() if k in method_class.option_fields}
    method: Method = method_class(**options)
    if method.needs_gpu(settings.preset) and device == "cpu":
        console.print(f"[yellow]warning: {method_name} preset {settings.preset!r} is meant for a GPU; running on CPU[/]")
    seed_everything(settings.seed)
    train, test = Sequence(subject, TRAIN_SPLIT), Sequence(subject, TEST_SPLIT)
    label = f"{method_name}/{subject.root.name}"
    with progress_bar(console) as progress:
        state = _fit(method, run_dir, train, test, settings, device, progress, label)
        if not state.get("test_fitted"):
            console.print(f"{label}: training budget reached at step {state['step']} of {method.num_iterations()}; "
                          "run again to resume")
            return []
        if settings.fit_only:
            console.print(f"{label}: fitted ({state['step']} steps, {state['elapsed_s']:.0f} s); render and score later")
            return []
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
        "seed": settings.seed,
        "preset": settings.preset,
        "config_hash": config_hash(method, settings.preset),
        **provenance(subject.root),
        "device": state["device"],
        "wall_time_s": round(state["elapsed_s"], 2),
    }
    records = [Record.from_metric(r, context) for r in results]
    ResultStore(settings.results).append(records)
    done.write_text(json.dumps({
        "records": len(records), "fit_seconds": state["elapsed_s"], "test_fit_seconds": state["test_fit_s"],
        "fitted_on": state["device"], "subject_root": str(subject.root.resolve()),
    }))
    return records


def run_benchmark(methods: list[str], dataset: str, subjects: list[Subject], settings: RunSettings, console: Console) -> list[Record]:
    """Every method on every subject, in order; a killed run resumes where it stopped."""
    known_options = set()
    for name in methods:
        known_options |= METHODS.get(name).option_fields  # also fails early on an unknown method name
    unknown = sorted(set(settings.method_options or {}) - known_options)
    if unknown:
        raise NhaBenchError(
            f"--option {', '.join(unknown)}: no method of {', '.join(methods)} takes it",
            fix="see the method's configuration (nha: nha_bench/methods/nha/config.py); each option goes to the methods that take it",
        )
    records: list[Record] = []
    for name in methods:
        for subject in subjects:
            records += run_subject(name, dataset, subject, settings, console)
    return records
