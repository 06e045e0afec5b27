"""Before a sweep's run folders travel back from the GPU machine (scripts/gpu_sweep.sh): drop the
optimiser states from every finished NHA checkpoint under SWEEP_DIR (~16 -> ~5 MB; rendering and
scoring do not need them) and print the tags (SWEEP_DIR's sub-folders) of the fits the training budget
stopped. Those keep their optimiser states, so that the next call continues them exactly.

    python scripts/slim_runs.py SWEEP_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from nha_bench.methods.nha.method import CHECKPOINT
from nha_bench.runner import read_checkpoint_state


def slim_finished(sweep_dir: Path) -> list[str]:
    """Slim the checkpoints whose test-time fit is done; returns the tags of the unfinished fits."""
    unfinished = []
    for path in sorted(sweep_dir.rglob(f"checkpoint/{CHECKPOINT}")):
        if not read_checkpoint_state(path.parent).get("test_fitted"):
            unfinished.append(path.relative_to(sweep_dir).parts[0])
            continue
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        if checkpoint.pop("optim", None) is not None:
            torch.save(checkpoint, path)
    return unfinished


if __name__ == "__main__":
    print(" ".join(slim_finished(Path(sys.argv[1]))))
