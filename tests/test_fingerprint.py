"""The subject folder fingerprint that every result record carries."""

from __future__ import annotations

from pathlib import Path

from nha_bench.datasets.fingerprint import FINGERPRINT_CHARS, subject_fingerprint


def _folder(root: Path) -> Path:
    (root / "rgb").mkdir(parents=True)
    (root / "meta.json").write_text('{"subject": "s"}')
    (root / "rgb" / "000000.png").write_bytes(b"\x89PNG frame 0")
    (root / "tracking.npz").write_bytes(b"tracked")
    return root


def test_same_content_same_fingerprint_wherever_it_lies(tmp_path):
    a, b = _folder(tmp_path / "a"), _folder(tmp_path / "elsewhere" / "b")
    assert subject_fingerprint(a) == subject_fingerprint(b)
    assert len(subject_fingerprint(a)) == FINGERPRINT_CHARS


def test_a_changed_byte_a_renamed_or_added_file_changes_it(tmp_path):
    root = _folder(tmp_path / "s")
    before = subject_fingerprint(root)
    (root / "tracking.npz").write_bytes(b"trackeD")  # re-tracked: same size, other bytes
    changed = subject_fingerprint(root)
    (root / "tracking.npz").rename(root / "tracking2.npz")
    renamed = subject_fingerprint(root)
    (root / "rgb" / "000001.png").write_bytes(b"")
    added = subject_fingerprint(root)
    assert len({before, changed, renamed, added}) == 4


def test_hidden_files_and_folders_are_left_out(tmp_path):
    root = _folder(tmp_path / "s")
    before = subject_fingerprint(root)
    (root / ".work").mkdir()
    (root / ".work" / "render_job.json").write_text("{}")
    (root / "rgb" / ".DS_Store").write_bytes(b"x")
    assert subject_fingerprint(root) == before


def test_meta_extra_is_provenance_and_left_out_the_rest_of_meta_counts(tmp_path):
    root = _folder(tmp_path / "s")
    (root / "meta.json").write_text('{"subject": "s", "width": 64, "extra": {"wall_time_s": 12.5}}')
    before = subject_fingerprint(root)
    (root / "meta.json").write_text('{"width": 64, "subject": "s", "extra": {"wall_time_s": 99.0, "source_video": "/a/b.mp4"}}')
    assert subject_fingerprint(root) == before  # made again: other timings and paths, keys reordered
    (root / "meta.json").write_text('{"subject": "s", "width": 128, "extra": {"wall_time_s": 12.5}}')
    assert subject_fingerprint(root) != before
