"""Stage 1 (own process, needs ``mhcore``): build a MakeHuman identity and its posed frames.

Run as ``python -m nha_bench.datasets.synthetic.mh_stage JOB.json``. mhcore puts generic module
names (``export``, ``material``, ``log``, ...) on ``sys.path``, so it never shares a process with bpy.
Writes into the job's work folder:
  identity.npz   per object: faces (F, 4), uv (F, 4, 2), texture; body: base-mesh vertex ids
  identity.json  object names/textures/kinds, head centre (m), modifiers actually applied
  coords/NNNNNN.npy  per frame (V_total, 3) float32 posed vertices of all objects (metres, MakeHuman world)
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from nha_bench.datasets.synthetic import post

NECK_BONES = (("neck01", 0.15), ("neck02", 0.2), ("neck03", 0.25), ("head", 0.4))  # share of the head rotation
NECK_CUT_BASE_DM = 6.1  # keep the base mesh above this height (decimetres): head and neck only
SCALE = 0.1  # MakeHuman decimetres -> metres


def _euler_local(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation in a neck bone's local frame (y along the bone): yaw about y, pitch about x, roll about z."""
    a, b, c = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return ry @ rx @ rz


def _head_weight(H, skel) -> np.ndarray:
    """Per base-mesh vertex: skinning weight of the head bone and its children (jaw, eyes, face)."""
    names: list[str] = []
    stack = [skel.getBone("head")]
    while stack:
        bone = stack.pop()
        names.append(bone.name)
        stack.extend(bone.children)
    weight = np.zeros(len(H.meshData.coord))
    for name, (verts, w) in H.getVertexWeights().data.items():
        if name in names:
            weight[verts] += w
    return weight


def build(job: dict) -> None:
    os.environ["MHCORE_DATA"] = job["data_root"]
    import mhcore  # noqa: E402  (after MHCORE_DATA is set)
    from mhcore import assets as mh_assets

    t0 = time.time()
    work = Path(job["work"])
    (work / "coords").mkdir(parents=True, exist_ok=True)
    spec = job["subject"]
    h = mhcore.new_human()
    H = h.human
    D = Path(mhcore.data_path())
    rng = np.random.default_rng(spec["seed"])

    H.setGender(spec["gender"])
    H.setAge(spec["age"])
    eth = {"African": 0.0, "Asian": 0.0, "Caucasian": 0.0, **spec["ethnicity"]}
    H.setAfrican(eth["African"], sync=False)
    H.setAsian(eth["Asian"], sync=False)
    H.setCaucasian(eth["Caucasian"], sync=False)
    from nha_bench.datasets.synthetic.spec import random_modifiers

    modifiers = spec["modifiers"] or random_modifiers(h.list_modifiers(), rng)
    for name, value in modifiers.items():
        H.getModifier(name).setValue(value)
    H.applyAllTargets()

    h.equip_eyes(str(D / "eyes/high-poly/high-poly.mhclo"))
    h.equip_eyebrows(str(D / f"eyebrows/{spec['eyebrows']}/{spec['eyebrows']}.mhclo"))
    h.equip_eyelashes(str(D / f"eyelashes/{spec['eyelashes']}/{spec['eyelashes']}.mhclo"))
    h.equip_teeth(str(D / "teeth/teeth_base/teeth_base.mhclo"))
    h.equip_tongue(str(D / "tongue/tongue01/tongue01.mhclo"))
    h.equip_hair(str(D / f"hair/{spec['hair']}/{spec['hair']}.mhclo"))
    h.set_skin(str(D / f"skins/{spec['skin']}/{spec['skin']}.mhmat"))
    import material

    H.eyesProxy.object.material = material.fromFile(str(D / f"eyes/materials/{spec['eyes']}.mhmat"))

    skel = H.getBaseSkeleton()
    body = H.meshData
    rest = body.coord.copy()
    # Same topology for every identity: the base mesh's "body" faces (no helpers) above a fixed
    # height of the unmodified base mesh (decimetres), i.e. head and neck.
    body_group = [fg.idx for fg in body.faceGroups if fg.name == "body"][0]
    in_body = body.group == body_group
    faces, uvf = body.fvert[in_body], body.fuvs[in_body]
    keep_face = (body.orig_coord[faces][:, :, 1] > NECK_CUT_BASE_DM).all(axis=1)
    faces, uvf = faces[keep_face], uvf[keep_face]
    body_ids, body_faces = np.unique(faces, return_inverse=True)
    body_faces = body_faces.reshape(-1, 4)

    objects = [("body", "skin", None)]
    for kind, pxy in (("eyes", H.eyesProxy), ("eyebrows", H.eyebrowsProxy), ("eyelashes", H.eyelashesProxy),
                      ("teeth", H.teethProxy), ("tongue", H.tongueProxy), ("hair", H.hairProxy)):
        objects.append((kind, kind, pxy))

    near_cut = body.orig_coord[body_ids, 1] < NECK_CUT_BASE_DM + 0.25
    arrays: dict[str, np.ndarray] = {"body_base_ids": body_ids.astype(np.int32),
                                     "body_cap_edges": post.cap_edges(body_faces, near_cut),
                                     "body_head_weight": _head_weight(H, skel)[body_ids].astype(np.float32)}
    info = []
    for kind, _, pxy in objects:
        if pxy is None:
            mesh, f, fuv, tex = body, body_faces, uvf, body.material.diffuseTexture
        else:
            mesh = pxy.object.mesh
            f, fuv, tex = mesh.fvert, mesh.fuvs, mesh.material.diffuseTexture
        if not Path(str(tex)).is_file():
            raise FileNotFoundError(f"{kind} texture {tex} is missing from the MakeHuman data; pick another asset")
        arrays[f"{kind}_faces"] = np.asarray(f, np.int32)  # (F, 4); a repeated vertex marks a triangle
        arrays[f"{kind}_uv"] = np.asarray(mesh.texco, np.float32)[fuv].astype(np.float32)
        info.append({"kind": kind, "texture": str(tex), "n_vertices": int(len(body_ids) if pxy is None else len(mesh.coord))})
    np.savez_compressed(work / "identity.npz", **arrays)

    head_ids = [i for i in body_ids if rest[i, 1] > skel.getBone("head").headPos[1]]
    head_centre = rest[head_ids].mean(axis=0) * SCALE
    (work / "identity.json").write_text(json.dumps({
        "objects": info, "head_centre_m": head_centre.tolist(), "modifiers": modifiers,
        "bust_height_m": float(np.ptp(rest[body_ids, 1]) * SCALE),
        "build_s": round(time.time() - t0, 2),
    }, indent=1))
    sys.stderr.write(f"identity ready in {time.time() - t0:.1f}s\n")

    unit, _ = mh_assets._face_pose_units(H)
    from animation import Pose

    bone_index = {b.name: i for i, b in enumerate(skel.getBones())}
    rest_data = None
    for item in job["frames"]:
        index, params = item["index"], item["params"]
        out = work / "coords" / f"{index:06d}.npy"
        if out.is_file():
            continue
        names = list(params["units"])
        if names:
            data = unit.getBlendedPose(names, [params["units"][n] for n in names], only_data=True)
        else:
            if rest_data is None:
                rest_data = unit.getBlendedPose(["Rest"], [1.0], only_data=True)
            data = rest_data.copy()
        for bone, share in NECK_BONES:
            data[bone_index[bone], :3, :3] = _euler_local(
                share * params["yaw"], share * params["pitch"], share * params["roll"])
        pose = Pose("nha-frame", data)
        H.addAnimation(pose)
        H.setActiveAnimation(pose.name)
        H.setPosed(True)
        H.refreshPose()
        mh_assets.adapt_all_proxies(H, fit_to_posed=True)
        coords = [body.coord[body_ids]] + [pxy.object.mesh.coord for _, _, pxy in objects[1:]]
        tmp = out.with_name(f".{out.name}")
        with open(tmp, "wb") as handle:
            np.save(handle, (np.concatenate(coords) * SCALE).astype(np.float32))
        os.replace(tmp, out)
        print(f"@@frame {index}", flush=True)  # progress for the parent


if __name__ == "__main__":
    build(json.loads(Path(sys.argv[1]).read_text()))
