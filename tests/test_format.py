"""Dataset format: round trip, validation, and clear errors for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nha_bench.datasets import Subject, SubjectWriter, validate_subject
from nha_bench.datasets.format import decode_normal, encode_normal
from nha_bench.errors import DatasetError, ExistsError
from nha_bench.mesh import Mesh


def test_round_trip_and_valid(subject_dir):
    subject = Subject(subject_dir)
    assert validate_subject(subject_dir) == []
    assert subject.rgb(0).shape == (48, 48, 3) and subject.rgb(0).dtype == np.float32
    assert subject.mask(0).dtype == bool and subject.mask(0).any()
    normal = subject.normal(0)
    inside = subject.mask(0)
    assert np.allclose(np.linalg.norm(normal[inside], axis=-1), 1, atol=1e-5)
    assert subject.split("val") == [1, 3, 5]
    assert subject.mesh(1).vertex_masks["face"].dtype == bool


def test_normal_encoding_error_is_small():
    rng = np.random.default_rng(0)
    n = rng.normal(size=(1000, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    back = decode_normal(encode_normal(n[None])[0])
    angle = np.degrees(np.arccos(np.clip((n * back).sum(-1), -1, 1)))
    assert angle.max() < 0.6  # 8-bit quantisation bound, documented in format.py


def test_missing_frame_is_named(subject_dir):
    (subject_dir / "rgb" / "000003.png").unlink()
    problems = validate_subject(subject_dir)
    assert [p.path.name for p in problems] == ["000003.png"]
    with pytest.raises(DatasetError, match="000003.png"):
        Subject(subject_dir).rgb(3)


def test_wrong_resolution_is_named(subject_dir):
    import imageio.v3 as iio

    iio.imwrite(subject_dir / "rgb" / "000002.png", np.zeros((40, 48, 3), np.uint8))
    problems = validate_subject(subject_dir)
    assert len(problems) == 1 and problems[0].path.name == "000002.png"
    assert "48x40" in problems[0].message and "48x48" in problems[0].message


def test_corrupt_image_is_named(subject_dir):
    (subject_dir / "mask" / "000001.png").write_bytes(b"not a png")
    problems = validate_subject(subject_dir)
    assert len(problems) == 1 and "cannot decode" in problems[0].message
    assert problems[0].path == subject_dir / "mask" / "000001.png"


def test_mismatched_mesh_is_named(subject_dir):
    mesh = Mesh.load(subject_dir / "mesh" / "000001.npz")
    bad = Mesh(mesh.vertices[:10], mesh.faces, mesh.vertex_masks)
    np.savez(subject_dir / "mesh" / "000001.npz", vertices=bad.vertices, faces=bad.faces)
    problems = validate_subject(subject_dir)
    assert len(problems) == 1 and problems[0].path.name == "000001.npz"
    assert "index vertex" in problems[0].message


def test_mask_of_other_topology_is_an_error():
    with pytest.raises(DatasetError, match="vertex mask 'face'"):
        Mesh(np.zeros((4, 3)), np.array([[0, 1, 2]]), {"face": np.ones(5, bool)}).check("x.npz")


def test_meta_problems_and_missing_meta(subject_dir, tmp_path):
    meta = json.loads((subject_dir / "meta.json").read_text())
    meta["splits"]["val"].append(99)
    (subject_dir / "meta.json").write_text(json.dumps(meta))
    assert any("outside" in p.message for p in validate_subject(subject_dir))
    empty = tmp_path / "unfinished"
    empty.mkdir()
    assert "meta.json is missing" in validate_subject(empty)[0].message


def test_writer_never_overwrites_without_force(subject_dir):
    with pytest.raises(ExistsError, match="--force"):
        SubjectWriter(subject_dir)
    assert SubjectWriter(subject_dir, force=True).has_frame(0, ("rgb", "mask", "mesh"))
