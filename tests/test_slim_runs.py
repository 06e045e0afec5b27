"""scripts/slim_runs.py: finished sweep fits travel without optimiser states, stopped ones keep them."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from conftest import load_script


def _fit(sweep: Path, tag: str, state: dict) -> Path:
    checkpoint = sweep / tag / "nha" / "synthetic" / "subject_m1" / "checkpoint"
    checkpoint.mkdir(parents=True)
    torch.save({"networks": {"w": torch.ones(3)}, "optim": {"opt_geometry": {"state": {}}}}, checkpoint / "nha.pt")
    (checkpoint / "state.json").write_text(json.dumps(state))
    return checkpoint / "nha.pt"


def test_finished_fits_lose_their_optimiser_states_and_stopped_ones_keep_them(tmp_path):
    finished = _fit(tmp_path, "done_m1", {"step": 30, "test_fitted": True})
    stopped = _fit(tmp_path, "long_m1", {"step": 12, "elapsed_s": 5.0})
    assert load_script("slim_runs").slim_finished(tmp_path) == ["long_m1"]
    slimmed = torch.load(finished, weights_only=True)
    assert "optim" not in slimmed and torch.equal(slimmed["networks"]["w"], torch.ones(3))
    assert "optim" in torch.load(stopped, weights_only=True)
    assert load_script("slim_runs").slim_finished(tmp_path) == ["long_m1"]  # a second pass changes nothing
