"""Runner, results store, tables and the regression check, driven by a test-only method."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from nha_bench.cli import app
from nha_bench.datasets import Subject
from nha_bench.datasets.fingerprint import subject_fingerprint
from nha_bench.errors import NhaBenchError
from nha_bench.mesh import Mesh
from nha_bench.method import Method, Renders, Sequence
from nha_bench.registry import METHODS
from nha_bench.results import ResultStore
from nha_bench.runner import RunSettings, run_benchmark
from nha_bench.tables import dataset_tables, display_order, table1, table2

from conftest import make_subject

SHIFT_MM = 3.0


@METHODS.register("test_noisy_gt")
class NoisyGroundTruth(Method):
    """Renders the ground truth plus known noise, and GT sphere meshes grown by SHIFT_MM in radius."""

    name = "test_noisy_gt"
    display_name = "Noisy GT (test)"
    provides = frozenset({"rgb", "normal", "mesh"})
    fail_at_step: int | None = None

    def setup(self, train: Sequence, preset: str, device: str, seed: int) -> None:
        self.steps_done: list[int] = []
        self.rng = np.random.default_rng(seed)

    def num_iterations(self) -> int:
        return 5

    def train_iteration(self, step: int) -> dict[str, float]:
        if step == self.fail_at_step:
            raise KeyboardInterrupt("simulated kill")
        self.steps_done.append(step)
        return {"loss": 1.0 / (step + 1)}

    def render(self, test: Sequence) -> Renders:
        rgb = test.load("rgb")
        noisy = np.clip(rgb + 0.05 * np.sign(self.rng.standard_normal(rgb.shape)), 0, 1)
        meshes = []
        for i in test.indices:
            gt = test.subject.mesh(i)
            centre = gt.vertices.mean(axis=0)
            offset = gt.vertices - centre
            radius = np.linalg.norm(offset, axis=1, keepdims=True)
            meshes.append(Mesh(centre + offset * (radius + SHIFT_MM) / radius, gt.faces, gt.vertex_masks))
        return Renders(test.indices, noisy.astype(np.float32), test.load("normal"), meshes)

    def save(self, directory: Path) -> None:
        (directory / "steps.json").write_text(json.dumps(self.steps_done))

    def load(self, directory: Path) -> None:
        self.steps_done = json.loads((directory / "steps.json").read_text())


@METHODS.register("test_steps_option")
class StepsOption(NoisyGroundTruth):
    """The test method with one constructor option: its number of training steps."""

    name = "test_steps_option"
    option_fields = frozenset({"steps"})

    def __init__(self, steps: int = 5) -> None:
        self.steps = steps

    def num_iterations(self) -> int:
        return self.steps


FAST = {"hausdorff_full": {"n_samples": 3000}, "hausdorff_face": {"n_samples": 3000}}


def _settings(tmp_path: Path, **kw) -> RunSettings:
    runs = tmp_path / "runs"
    return RunSettings(runs_dir=runs, results=runs / "results.jsonl", checkpoint_every=2, metric_options=FAST, **kw)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> tuple[Subject, RunSettings, list]:
    """One completed run of the test method, shared by the read-only tests."""
    tmp_path = tmp_path_factory.mktemp("run")
    subject = Subject(make_subject(tmp_path / "data" / "subj_a"))
    settings = _settings(tmp_path)
    records = run_benchmark(["test_noisy_gt"], "test", [subject], settings, Console(quiet=True))
    return subject, settings, records


def test_run_scores_match_independent_computation(finished_run):
    subject, settings, records = finished_run
    subject_dir = subject.root
    by_metric = {r.metric: r for r in records}
    # L1: every masked pixel is off by 0.05 (up to clipping and 8-bit rounding).
    outputs = settings.runs_dir / "test_noisy_gt" / "test" / "subj_a" / "outputs"
    import imageio.v3 as iio

    diffs = []
    for i in subject.split("val"):
        pred = iio.imread(outputs / "rgb" / f"{i:06d}.png").astype(np.float64) / 255
        gt = iio.imread(subject_dir / "rgb" / f"{i:06d}.png").astype(np.float64) / 255
        diffs.append(np.abs(pred - gt)[subject.mask(i)].mean())
    assert by_metric["l1"].value == pytest.approx(np.mean(diffs), abs=1e-6)
    assert by_metric["normal_error"].value == pytest.approx(0.0, abs=0.1)
    # a uniformly grown head: no rigid motion removes the radius gap, the similarity alignment does
    assert by_metric["hausdorff_full"].extra["rigid"] == pytest.approx(SHIFT_MM, rel=0.05)
    assert by_metric["hausdorff_full"].value < 0.1 * SHIFT_MM
    assert by_metric["l1"].n_frames == 3 and by_metric["l1"].split == "val"
    assert by_metric["lpips"].status in ("ok", "unavailable")
    assert all(r.git_commit and r.config_hash for r in records)
    assert {r.data_fingerprint for r in records} == {subject_fingerprint(subject_dir)}


def test_evaluate_records_name_the_data_and_code_they_scored(finished_run, tmp_path):
    """`nha-bench evaluate` (renders already on disk) stamps its records as a run does."""
    subject, settings, _ = finished_run
    outputs = settings.runs_dir / "test_noisy_gt" / "test" / "subj_a" / "outputs"
    results = tmp_path / "evaluated.jsonl"
    args = ["evaluate", str(outputs), "--method", "external", "--dataset", "synthetic",
            "--data-root", str(subject.root.parent), "--subject", "subj_a", "--results", str(results)]
    assert CliRunner().invoke(app, args).exit_code == 0
    records = ResultStore(results).load()
    assert records and {r.data_fingerprint for r in records} == {subject_fingerprint(subject.root)}
    assert all(r.git_commit and "torch" in r.package_versions for r in records)


def test_killed_run_resumes_from_checkpoint(subject_dir, tmp_path):
    subject = Subject(subject_dir)
    NoisyGroundTruth.fail_at_step = 3
    try:
        with pytest.raises(KeyboardInterrupt):
            run_benchmark(["test_noisy_gt"], "test", [subject], _settings(tmp_path), Console(quiet=True))
    finally:
        NoisyGroundTruth.fail_at_step = None
    run_dir = tmp_path / "runs" / "test_noisy_gt" / "test" / "subj_a"
    assert json.loads((run_dir / "checkpoint" / "state.json").read_text())["step"] == 2
    run_benchmark(["test_noisy_gt"], "test", [subject], _settings(tmp_path), Console(quiet=True))
    assert json.loads((run_dir / "checkpoint" / "steps.json").read_text()) == [0, 1, 2, 3, 4]
    # finished subjects are skipped unless forced; rescoring renders and scores again without refitting
    assert run_benchmark(["test_noisy_gt"], "test", [subject], _settings(tmp_path), Console(quiet=True)) == []
    checkpoint = (run_dir / "checkpoint" / "state.json").read_text()
    rescored = run_benchmark(["test_noisy_gt"], "test", [subject], _settings(tmp_path, rescore=True), Console(quiet=True))
    assert rescored and (run_dir / "done.json").is_file() and (run_dir / "outputs").is_dir()
    assert (run_dir / "checkpoint" / "state.json").read_text() == checkpoint
    assert json.loads((run_dir / "checkpoint" / "steps.json").read_text()) == [0, 1, 2, 3, 4]
    with pytest.raises(NhaBenchError, match="--force and --rescore"):
        _settings(tmp_path, force=True, rescore=True)


def test_training_budget_stops_with_a_checkpoint_and_a_later_run_resumes(subject_dir, tmp_path):
    subject = Subject(subject_dir)
    assert run_benchmark(["test_noisy_gt"], "test", [subject], _settings(tmp_path, train_budget_s=0.0), Console(quiet=True)) == []
    run_dir = tmp_path / "runs" / "test_noisy_gt" / "test" / "subj_a"
    state = json.loads((run_dir / "checkpoint" / "state.json").read_text())
    assert state["step"] == 1 and "test_fitted" not in state and not (run_dir / "done.json").exists()
    records = run_benchmark(["test_noisy_gt"], "test", [subject], _settings(tmp_path), Console(quiet=True))
    assert records and json.loads((run_dir / "checkpoint" / "steps.json").read_text()) == [0, 1, 2, 3, 4]


def test_fit_only_then_a_later_run_scores_without_refitting(subject_dir, tmp_path, monkeypatch):
    """A fit made elsewhere (GPU machine, ``fit_only``) is rendered and scored by a later run."""
    subject = Subject(subject_dir)
    settings = _settings(tmp_path, fit_only=True, probe_every=2)
    assert run_benchmark(["test_noisy_gt"], "test", [subject], settings, Console(quiet=True)) == []
    run_dir = tmp_path / "runs" / "test_noisy_gt" / "test" / "subj_a"
    state = json.loads((run_dir / "checkpoint" / "state.json").read_text())
    assert state["step"] == 5 and state["test_fitted"] and state["device"] == "cpu"
    assert not (run_dir / "outputs").exists() and not (run_dir / "done.json").exists()
    log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log if "probe_l1" in row] == [1, 3, 4]
    assert all(0.0 < row["probe_l1"] < 0.1 for row in log if "probe_l1" in row)  # GT + 0.05 noise

    def no_refit(self, test):
        raise AssertionError("the test-time fit ran again")

    monkeypatch.setattr(NoisyGroundTruth, "fit_frame_params", no_refit)
    records = run_benchmark(["test_noisy_gt"], "test", [subject], _settings(tmp_path), Console(quiet=True))
    assert {r.metric for r in records} >= {"l1", "hausdorff_full"}
    assert json.loads((run_dir / "checkpoint" / "steps.json").read_text()) == [0, 1, 2, 3, 4]
    assert len(log) == len((run_dir / "train_log.jsonl").read_text().splitlines())  # no new steps
    assert all(r.wall_time_s == round(state["elapsed_s"], 2) for r in records)


def test_options_go_to_the_methods_that_take_them(subject_dir, tmp_path):
    subject = Subject(subject_dir)
    methods = ["test_noisy_gt", "test_steps_option"]
    settings = _settings(tmp_path, fit_only=True, method_options={"steps": 3})
    run_benchmark(methods, "test", [subject], settings, Console(quiet=True))
    steps = {m: json.loads((tmp_path / "runs" / m / "test" / "subj_a" / "checkpoint" / "steps.json").read_text()) for m in methods}
    assert steps == {"test_noisy_gt": [0, 1, 2, 3, 4], "test_steps_option": [0, 1, 2]}
    with pytest.raises(NhaBenchError, match="--option nope: no method of test_noisy_gt, test_steps_option takes it"):
        run_benchmark(methods, "test", [subject], _settings(tmp_path / "b", method_options={"steps": 3, "nope": 1}), Console(quiet=True))
    assert not (tmp_path / "b" / "runs").exists()  # refused before any work


def test_tables_mark_missing_entries(finished_run):
    _, settings, _ = finished_run
    records = ResultStore(settings.results).frame()
    t2 = table2(records, "test")
    row = t2.frame.loc["Noisy GT (test)"]
    assert row["L1 ↓"] != "n/a" and float(row["L1 ↓"]) > 0
    assert "NerFACE (paper)" in t2.frame.index  # paper rows for orientation
    t1 = table1(records, "test")
    stored = records.loc[records["metric"] == "hausdorff_full", "value"].iloc[0]
    assert float(t1.frame.loc["Hausdorff (full): Noisy GT (test)", "subj_a"]) == pytest.approx(stored, abs=0.01)
    if (records["metric"] == "lpips").any() and (records.loc[records["metric"] == "lpips", "status"] == "unavailable").all():
        assert row["LPIPS ↓"] == "unavail." and any("LPIPS" in n for n in t2.notes)


def test_table1_mean_column_covers_the_subjects_every_method_has(finished_run):
    _, settings, _ = finished_run
    records = ResultStore(settings.results).frame()
    full = records.loc[records["metric"] == "hausdorff_full", "value"].iloc[0]
    second = records.assign(subject="subj_b", value=records["value"] + 1.0)
    t1 = table1(pd.concat([records, second], ignore_index=True), "test")
    assert t1.frame.loc["Hausdorff (full): Noisy GT (test)", "mean"] == f"{full + 0.5:.2f}"
    t1 = table1(pd.concat([records, second, records.assign(method="headmodel")], ignore_index=True), "test")
    assert t1.frame.loc["Hausdorff (full): Noisy GT (test)", "mean"] == f"{full:.2f}"  # subj_b: no headmodel
    assert t1.frame.loc["Hausdorff (full): Noisy GT (test)", "subj_b"] == f"{full + 1.0:.2f}"
    assert any("left out: subj_b" in note for note in t1.notes)


def test_tables_show_the_reference_baseline_after_the_methods_compared_with_it(finished_run):
    _, settings, _ = finished_run
    records = ResultStore(settings.results).frame()
    both = pd.concat([records.assign(method="headmodel"), records], ignore_index=True)
    assert display_order(["headmodel", "test_noisy_gt", "not_installed", "test_noisy_gt"]) == ["not_installed", "test_noisy_gt", "headmodel"]
    rows = list(table1(both, "test").frame.index)
    assert rows.index("Hausdorff (full): Noisy GT (test)") < rows.index("Hausdorff (full): Tracked head model")
    rows = list(table2(both, "test", with_paper=False).frame.index)
    assert rows == ["Noisy GT (test)", "Tracked head model"]


def test_table1_only_for_datasets_with_geometry(finished_run):
    _, settings, _ = finished_run
    records = ResultStore(settings.results).frame()
    appearance_only = records[~records["metric"].isin(["hausdorff_full", "hausdorff_face", "normal_error"])].assign(dataset="clips")
    tables = dataset_tables(pd.concat([records, appearance_only], ignore_index=True))
    assert list(tables) == ["table2_clips", "table1_test", "table2_test"]


def test_check_passes_then_fails_on_perturbed_score(finished_run, tmp_path):
    _, run_settings, _ = finished_run
    settings = _settings(tmp_path)
    settings.results.parent.mkdir(parents=True)
    settings.results.write_text(run_settings.results.read_text())
    reference = tmp_path / "reference.json"
    cli = CliRunner()
    args = ["check", "--reference", str(reference), "--results", str(settings.results)]
    assert cli.invoke(app, args + ["--write"]).exit_code == 0
    assert cli.invoke(app, args).exit_code == 0
    # a rewrite keeps the reference's hand-written command and tolerances
    document = json.loads(reference.read_text())
    document["command"], document["tolerances"]["l1"] = "make the results like this", 0.02
    reference.write_text(json.dumps(document))
    assert cli.invoke(app, args + ["--write"]).exit_code == 0
    rewritten = json.loads(reference.read_text())
    assert rewritten["command"] == "make the results like this" and rewritten["tolerances"]["l1"] == 0.02
    assert rewritten["scores"] == document["scores"]
    # perturb one stored score beyond its tolerance: a newer record for the same key
    lines = settings.results.read_text().splitlines()
    record = json.loads(next(line for line in lines if '"metric": "l1"' in line))
    record["value"] += 0.05
    record["timestamp"] = "9999-01-01T00:00:00+00:00"
    with settings.results.open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    result = cli.invoke(app, args)
    assert result.exit_code == 1
    assert "l1" in result.output and "+0.05" in result.output


def test_cli_table_and_validate(finished_run, subject_dir, tmp_path):
    _, settings, _ = finished_run
    cli = CliRunner()
    out = tmp_path / "tables"
    result = cli.invoke(app, ["table", "--results", str(settings.results), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "table2_test.md").is_file() and (out / "table1_test.tex").is_file()
    assert "Table 1" in result.output and "Table 2" in result.output
    assert cli.invoke(app, ["data", "validate", str(subject_dir)]).exit_code == 0
    (subject_dir / "rgb" / "000001.png").unlink()
    bad = cli.invoke(app, ["data", "validate", str(subject_dir)])
    assert bad.exit_code == 1 and "000001.png" in bad.output


def test_report_has_grids_curves_and_mesh_error_maps(finished_run, tmp_path):
    from nha_bench.mesh_error import mean_vertex_error, render_error
    from nha_bench.report import write_report

    subject, settings, _ = finished_run
    outputs = settings.runs_dir / "test_noisy_gt" / "test" / "subj_a" / "outputs"
    vertices, faces, error = mean_vertex_error(outputs, subject)
    # the test method grows the GT sphere by SHIFT_MM: the similarity alignment takes that away
    assert error.shape == (len(vertices),) and error.mean() < 0.1 * SHIFT_MM
    image = render_error(vertices, faces, error, size=64)
    assert image.shape == (64, 64, 3) and (image < 250).any() and (image == 255).all(-1).any()
    page = write_report(settings.results, settings.runs_dir, tmp_path / "report.html").read_text()
    assert "mean vertex error after alignment" in page and page.count('<img src="data:image/png;base64,') == 2
    assert "<svg" in page  # the curves, inline: the page stands alone
    assert write_report(settings.results, settings.runs_dir, tmp_path / "again.html").read_text() == page  # reproducible
    linked = write_report(settings.results, settings.runs_dir, tmp_path / "pages" / "report.html", images=tmp_path / "img").read_text()
    saved = sorted(p.name for p in (tmp_path / "img").iterdir())
    assert saved == ["test_subj_a_grid.png", "test_subj_a_mesh_error.png", "training_curves.svg"]
    assert [f'<img src="../img/{name}"' in linked for name in saved] == [True] * 3
    assert "base64" not in linked and "<svg" not in linked  # linked, not embedded a second time
    assert "masked l1 of probe test frames" not in page  # this run was not probed
    assert "Dataset: test" in write_report(settings.results, settings.runs_dir, tmp_path / "only.html", only_dataset="test").read_text()
    with pytest.raises(NhaBenchError, match="no records to report for dataset 'real'"):
        write_report(settings.results, settings.runs_dir, tmp_path / "none.html", only_dataset="real")


def test_table2_averages_only_subjects_every_method_has(finished_run):
    _, settings, _ = finished_run
    records = ResultStore(settings.results).frame()
    extra_subject = records.assign(subject="subj_b", value=records["value"] + 0.5)
    other_method = records.assign(method="headmodel")
    t2 = table2(pd.concat([records, extra_subject, other_method], ignore_index=True), "test")
    l1 = records.loc[records["metric"] == "l1", "value"].iloc[0]
    assert float(t2.frame.loc["Noisy GT (test)", "L1 ↓"]) == pytest.approx(l1, abs=1e-3)  # subj_b left out
    assert any("left out: subj_b" in note for note in t2.notes)


def test_tables_say_when_a_subject_was_scored_on_different_versions_of_its_data(finished_run):
    _, settings, _ = finished_run
    records = ResultStore(settings.results).frame()
    fingerprint = records["data_fingerprint"].iloc[0]
    same = records.assign(method="headmodel")
    regenerated = records.assign(method="headmodel", data_fingerprint="0123456789abcdef")
    unknown = records.assign(method="headmodel", data_fingerprint="")  # a record from before fingerprints
    for table in (table1, table2):
        notes = table(pd.concat([records, same]), "test").notes
        assert not any("versions of its data" in n or "unknown" in n for n in notes)
        assert f"data scored (data_fingerprint): subj_a {fingerprint}" in notes
        notes = table(pd.concat([records, regenerated]), "test").notes
        assert any(n.startswith("subj_a: scored on different versions of its data") and "headmodel: 0123456789abcdef" in n
                   and f"test_noisy_gt: {fingerprint}" in n for n in notes)
        assert any("subj_a: whether every method scored the same data is unknown" in n
                   for n in table(pd.concat([records, unknown]), "test").notes)


def test_tables_say_when_a_subjects_seeds_were_fitted_with_different_configurations(finished_run):
    _, settings, _ = finished_run
    records = ResultStore(settings.results).frame()
    config = records["config_hash"].iloc[0]
    same, other = records.assign(seed=1), records.assign(seed=1, config_hash="0123456789")
    other_subject = records.assign(subject="subj_b", config_hash="0123456789")  # hashes may name a subject's data
    for table in (table1, table2):
        assert not any("different configurations" in n for n in table(pd.concat([records, same, other_subject]), "test").notes)
        notes = table(pd.concat([records, other]), "test").notes
        assert any(n.startswith("Noisy GT (test) on subj_a: seeds fitted with different configurations")
                   and f"{config}: seeds 0" in n and "0123456789: seeds 1" in n for n in notes)


def test_a_second_seed_fits_apart_and_tables_average_over_seeds(finished_run, tmp_path):
    """A seed-1 run beside a finished seed-0 run fits again (its own folder), its records carry the
    seed and stay next to seed 0's, and table cells are the mean over the seeds with their spread."""
    subject, seed0, _ = finished_run
    settings = _settings(tmp_path)
    settings.runs_dir.mkdir(parents=True)
    settings.results.write_text(seed0.results.read_text())
    records = run_benchmark(["test_noisy_gt"], "test", [subject], RunSettings(**{**vars(settings), "seed": 1}), Console(quiet=True))
    assert records and all(r.seed == 1 for r in records)
    assert (settings.runs_dir / "test_noisy_gt" / "test" / "subj_a.seed1" / "done.json").is_file()
    stored = ResultStore(settings.results).frame()
    l1 = stored[stored["metric"] == "l1"].set_index("seed")["value"]
    assert sorted(l1.index) == [0, 1] and l1[0] != l1[1]  # the test method's noise follows the seed
    t1, t2 = table1(stored, "test"), table2(stored, "test")
    full = stored[stored["metric"] == "hausdorff_full"]["value"]
    assert t1.frame.loc["Hausdorff (full): Noisy GT (test)", "subj_a"] == f"{full.mean():.2f} ±{full.std():.2f}"
    assert t2.frame.loc["Noisy GT (test)", "L1 ↓"] == f"{l1.mean():.3f} ±{l1.std():.3f}"
    assert any("seeds it was fitted with (0, 1 in all)" in note for note in t1.notes)
    # a second subject fitted with seed 0 only: the mean uses every record, no spread over seeds
    other = stored[stored["seed"] == 0].assign(subject="subj_b")
    both = table2(pd.concat([stored, other], ignore_index=True), "test").frame.loc["Noisy GT (test)", "L1 ↓"]
    assert both == f"{(l1.mean() + l1[0]) / 2:.3f}"


def test_reference_scores_without_a_seed_read_as_seed_0(finished_run, tmp_path):
    from nha_bench.reference import compare, load_reference, reference_from

    _, settings, _ = finished_run
    records = ResultStore(settings.results).frame()
    document = reference_from(records, "test", "abc")
    assert all(score["seed"] == 0 for score in document["scores"])
    for score in document["scores"]:
        del score["seed"]  # a reference written before seeds were stored
    path = tmp_path / "reference.json"
    path.write_text(json.dumps(document))
    assert compare(records, load_reference(path)) == []
