"""CI regression: the tiny preset on the built-in dataset reproduces the stored reference scores.

The reference (reports/reference/tiny.json) was written by `make demo` followed by
`nha-bench check --write`; its "command" field says how the results are made (a rewrite keeps it
and the tolerances), "git_commit" which commit wrote it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from nha_bench.datasets import load_subjects
from nha_bench.reference import compare, load_reference
from nha_bench.results import ResultStore
from nha_bench.runner import RunSettings, run_benchmark

REFERENCE = Path(__file__).resolve().parent.parent / "reports" / "reference" / "tiny.json"


@pytest.mark.slow
def test_tiny_preset_matches_reference(tmp_path):
    reference = load_reference(REFERENCE)
    methods = sorted({s["method"] for s in reference["scores"]})
    settings = RunSettings(preset="tiny", runs_dir=tmp_path / "runs", results=tmp_path / "results.jsonl", device="cpu")
    run_benchmark(methods, "tiny", load_subjects("tiny"), settings, Console(quiet=True))
    differences = compare(ResultStore(settings.results).frame(), reference)
    assert not differences, "scores drifted from the reference:\n" + "\n".join(map(str, differences))
    assert json.loads(REFERENCE.read_text())["scores"], "reference holds no scores"
