"""Evaluation protocols: which outputs they need, how they score them, how they average.

Two protocols, as in the paper: ``geometry`` (Table 1, synthetic data with GT meshes and
normals) and ``appearance`` (Table 2, image metrics on any dataset). Methods never score
themselves: the protocol reads their outputs folder (:mod:`nha_bench.outputs`) and the dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

import nha_bench.metrics  # noqa: F401  (registers the metrics)
from nha_bench.datasets.format import Subject
from nha_bench.metrics.base import FrameScores, ImageBatch, Metric, MeshPair, MetricResult, NormalBatch
from nha_bench.outputs import check_outputs, read_mesh, read_normal, read_rgb
from nha_bench.registry import METRICS


@dataclass(frozen=True)
class EvaluationProtocol:
    """A named set of metrics, the ground truth they need, and the table they feed."""

    name: str
    table: str
    metrics: tuple[str, ...]
    gt_any: tuple[str, ...]
    description: str

    def applies_to(self, subject: Subject) -> bool:
        """Whether the subject has any of the ground truth this protocol needs."""
        return any(subject.has(n) for n in self.gt_any)


GEOMETRY = EvaluationProtocol(
    "geometry",
    "table1",
    ("normal_error", "hausdorff_face", "hausdorff_full"),
    ("mesh", "normal"),
    "Synthetic geometry (paper Table 1): per-subject normal error and prediction-to-GT Hausdorff.",
)
APPEARANCE = EvaluationProtocol(
    "appearance",
    "table2",
    ("l1", "msssim", "lpips", "csim", "cpbd"),
    ("rgb",),
    "Appearance (paper Table 2): image metrics averaged over all validation frames of all subjects.",
)
PROTOCOLS = (GEOMETRY, APPEARANCE)


@dataclass
class Skipped:
    """A metric the protocol could not feed, and why (shown to the user, kept in the table)."""

    metric: str
    reason: str


def _batches(indices: list[int], size: int) -> list[list[int]]:
    return [indices[i : i + size] for i in range(0, len(indices), size)]


def _gt_ready(metric: Metric, subject: Subject, outputs: set[str]) -> str | None:
    kind = metric.spec.inputs
    if kind not in outputs:
        return f"the method provides no {kind} output"
    if kind in ("normal", "mesh") and not subject.has(kind):
        return f"the dataset has no ground-truth {kind}"
    return None


def evaluate_outputs(
    outputs_dir: Path,
    subject: Subject,
    split: str = "val",
    protocols: tuple[EvaluationProtocol, ...] = PROTOCOLS,
    metric_options: dict[str, dict] | None = None,
    batch_size: int = 8,
    on_batch=None,
) -> tuple[list[MetricResult], list[Skipped]]:
    """Score a method's outputs folder against the subject's split with the applicable protocols."""
    outputs = check_outputs(outputs_dir, subject, split)
    metric_options = metric_options or {}
    selected: list[Metric] = []
    skipped: list[Skipped] = []
    for protocol in protocols:
        if not protocol.applies_to(subject):
            continue
        for name in protocol.metrics:
            metric = METRICS.get(name)(**metric_options.get(name, {}))
            reason = _gt_ready(metric, subject, outputs)
            if reason:
                skipped.append(Skipped(name, reason))
            else:
                selected.append(metric)
    scores: dict[str, list[FrameScores]] = {m.spec.name: [] for m in selected}
    runnable = [m for m in selected if m.unavailable_reason() is None]
    size = (subject.meta.height, subject.meta.width)
    indices = subject.split(split)
    for chunk in _batches(indices, batch_size):
        inputs = _load_inputs({m.spec.inputs for m in runnable}, outputs_dir, subject, chunk, size)
        for metric in runnable:
            scores[metric.spec.name].append(metric.score(inputs[metric.spec.inputs]))
        if on_batch is not None:
            on_batch(len(chunk))
    return [m.summarize(scores[m.spec.name]) for m in selected], skipped


def _load_inputs(kinds: set[str], outputs_dir: Path, subject: Subject, chunk: list[int], size: tuple[int, int]) -> dict:
    inputs: dict = {}
    if "rgb" in kinds:
        inputs["rgb"] = ImageBatch(
            pred=np.stack([read_rgb(outputs_dir, i, size) for i in chunk]),
            target=np.stack([subject.rgb(i) for i in chunk]),
            mask=np.stack([subject.mask(i) for i in chunk]),
        )
    if "normal" in kinds:
        pred = np.stack([read_normal(outputs_dir, i) for i in chunk])
        target = np.stack([subject.normal(i) for i in chunk])
        # Head region of the GT normal map, where the prediction has a surface (protocol.md).
        mask = (np.linalg.norm(target, axis=-1) > 0.5) & (np.linalg.norm(pred, axis=-1) > 0.5)
        inputs["normal"] = NormalBatch(pred=pred, target=target, mask=mask)
    if "mesh" in kinds:
        inputs["mesh"] = [MeshPair(read_mesh(outputs_dir, i), subject.mesh(i)) for i in chunk]
    return inputs
