"""scripts/pack_subject.py: the subset / pack / unpack round trip used to carry subjects to the GPU."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nha_bench.datasets.format import Subject
from nha_bench.datasets.validate import validate_subject

from conftest import load_script

FIXTURE = Path(__file__).resolve().parents[1] / "nha_bench" / "datasets" / "fixtures" / "tiny" / "subject_f1"


def test_subset_pack_unpack_round_trip(tmp_path):
    script = load_script("pack_subject")
    source = Subject(FIXTURE)
    script.subset(FIXTURE, tmp_path / "subset", n_val=2)
    subset = Subject(tmp_path / "subset")
    val = source.split("val")
    kept = [val[0], val[-1]]  # evenly spaced: first and last
    assert subset.split("train") == list(range(len(source.split("train"))))
    assert json.loads((tmp_path / "subset" / "meta.json").read_text())["extra"]["subset_of"]["frames"][-2:] == kept
    new_val = subset.split("val")
    np.testing.assert_array_equal(subset.landmarks()[new_val], source.landmarks()[kept])
    tracking, tracking_src = np.load(tmp_path / "subset" / "tracking.npz"), np.load(FIXTURE / "tracking.npz")
    np.testing.assert_array_equal(tracking["expr"][new_val], tracking_src["expr"][kept])
    np.testing.assert_array_equal(tracking["shape"], tracking_src["shape"])
    train_keyframes = [k for k in tracking_src["keyframes"] if k in subset.split("train")]
    np.testing.assert_array_equal(tracking["keyframes"], train_keyframes)  # train frames keep their numbers
    np.testing.assert_array_equal(subset.mesh(new_val[0]).vertices, source.mesh(kept[0]).vertices)
    assert not validate_subject(tmp_path / "subset")

    script.pack(tmp_path / "subset", tmp_path / "packed", quality=90)
    assert not (tmp_path / "packed" / "mesh").exists()
    assert sorted(p.suffix for p in (tmp_path / "packed" / "normal").iterdir()) == [".webp"] * len(subset.split("train") + new_val)
    script.unpack(tmp_path / "packed", tmp_path / "unpacked")
    unpacked = Subject(tmp_path / "unpacked")
    assert not validate_subject(tmp_path / "unpacked")
    for i in new_val:  # normals (lossless WebP) and masks exact, RGB within JPEG error
        np.testing.assert_array_equal(unpacked.normal(i), subset.normal(i))
        np.testing.assert_array_equal(unpacked.mask(i), subset.mask(i))
        assert np.abs(unpacked.rgb(i) - subset.rgb(i)).mean() < 0.02
