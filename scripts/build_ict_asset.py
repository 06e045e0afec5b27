"""Build nha_bench/head/assets/ict_light.npz from the ICT-FaceKit Light arrays.

Usage: python scripts/build_ict_asset.py [--src /work/shared/ict_facekit] [--n-identity 100]

What it keeps (upstream README vertex ranges): face [0:9408], head and neck [9409:11247], mouth
socket [11248:13293], eye sockets [13294:14061] (these four form one surface, open only at the
bottom of the neck) and the two eyeballs [21451:24590]. Dropped: gums/tongue, teeth, lacrimal
fluid, eye blend, eye occlusion and eyelashes (interior or shading-only geometry that a
texture-on-surface avatar never shows and that no landmark uses).

Expressions: the 53 ARKit shapes listed in upstream's vertex_indices.json. Dropped: PupilDilate_L/R
(iris-only, not ARKit, invisible at our resolutions) and cheekRaiser_L/R (not in upstream's own
53-shape list; it overlaps cheekSquint).

Skinning (the model has no joints; added here, FLAME's joint tree root->neck->{jaw, eyeL, eyeR}):
- root: bbox centre of the neck ring at the lower-neck cut; weight on the lower neck.
- neck: bbox centre of the neck ring on the chin-nape plane; weight ramps smoothly 0->1 over the 4 cm
  of neck below that plane, 1 on the whole head above.
- jaw: pivot placed anatomically at the hinge (1 cm in front of the ear, 1 cm below its mid
  height; a free rigid fit to jawOpen put the fixed point behind the ear, because the shape also
  slides the jaw forward). The opening angle about x is fitted to the chin's jawOpen
  displacement, and each vertex's jaw weight is the fraction of that rigid motion which jawOpen
  applies to it (projection, clipped to [0, 1], smoothed 3 times on the mesh, < 0.03 -> 0).
  jawOpen STAYS an expression blendshape; pose[6:9] adds a rigid jaw rotation on top.
- eyes: eyeball centres from a least-squares sphere fit to each sclera; eyeballs rigid (weight 1).
Joints follow identity: joint = rest joint + mean identity offset of its anchor vertices; for
the eyes, weights over the sclera that reproduce the fitted sphere centre for every identity
mode (stored as a (5, V) regressor plus a (5, 3) offset).

Frame: metres, y up, z towards the viewer, translated so that the bounding box of the head
(everything above the neck) is centred at the origin.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from nha_bench.head.base import embed_vertices_as_landmarks

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "nha_bench" / "head" / "assets"

SURFACE_V = (0, 14062)  # face, head+neck, mouth socket, eye sockets
SURFACE_F = (0, 14034)
EYEBALL_V = (21451, 24591)
EYEBALL_F = (21496, 24692)
SCLERA = {"left": (21451, 22221), "right": (23021, 23791)}
EYEBALL = {"left": (21451, 23021), "right": (23021, 24591)}
NARROW_FACE_V = 6706
FULL_FACE_V = 9409
MOUTH_SOCKET_V = (11248, 13294)
EYE_SOCKET_V = (13294, 14062)
NECK_RAMP_CM = 4.0
JAW_MIN_WEIGHT = 0.03
NAPE_ABOVE_CHIN_CM = 5.0  # the chin-nape plane rises 5 cm from the chin tip to z = -8 cm
LOWER_NECK_BELOW_CHIN_CM = 3.0


def triangulate(quads: np.ndarray) -> np.ndarray:
    """Split quads (a,b,c,d) into (a,b,c),(a,c,d); upstream triangles repeat their last index."""
    is_quad = quads[:, 3] != quads[:, 2]
    return np.concatenate([quads[:, [0, 1, 2]], quads[is_quad][:, [0, 2, 3]]])


def adjacency(faces: np.ndarray, n: int) -> sp.csr_matrix:
    """Row-normalised vertex adjacency (for smoothing weights on the mesh)."""
    i = faces[:, [0, 1, 2, 1, 2, 0]].ravel()
    j = faces[:, [1, 2, 0, 0, 1, 2]].ravel()
    a = sp.csr_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    a.data[:] = 1.0
    deg = np.asarray(a.sum(1)).ravel()
    return sp.diags(1.0 / np.maximum(deg, 1)) @ a


def sphere_fit(p: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares sphere |p - c|^2 = r^2, linear in (c, r^2 - |c|^2)."""
    a = np.c_[2 * p, np.ones(len(p))]
    sol, *_ = np.linalg.lstsq(a, (p**2).sum(1), rcond=None)
    c = sol[:3]
    return c, float(np.sqrt(sol[3] + c @ c))


def eye_centre_regressor(v: np.ndarray, modes: np.ndarray, sclera: np.ndarray) -> np.ndarray:
    """Vertex weights (V,) whose weighted sum reproduces the fitted sclera-sphere centre for the
    template and for each identity mode (min-norm solution; the fit itself is not linear)."""
    c0 = sphere_fit(v[sclera])[0]
    rows = [v[sclera].T]  # (3, n): weights @ template = c0
    rhs = [c0]
    for m in modes:
        rows.append(m[sclera].T)
        rhs.append(sphere_fit(v[sclera] + m[sclera])[0] - c0)
    a = np.concatenate(rows + [np.ones((1, len(sclera)))])
    b = np.concatenate(rhs + [np.ones(1)])
    w, *_ = np.linalg.lstsq(a, b, rcond=None)
    out = np.zeros(len(v))
    out[sclera] = w
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", type=Path, default=Path("/work/shared/ict_facekit"))
    ap.add_argument("--n-identity", type=int, default=100)
    args = ap.parse_args()

    up = np.load(args.src / "ict_facekit_light.npz")
    vidx = json.loads((args.src / "vertex_indices.json").read_text())
    keep = np.r_[np.arange(*SURFACE_V), np.arange(*EYEBALL_V)]
    remap = -np.ones(len(up["v_template_cm"]), dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    quads = up["faces_quads"][np.r_[np.arange(*SURFACE_F), np.arange(*EYEBALL_F)]]
    faces = remap[triangulate(quads)]
    assert (faces >= 0).all(), "kept faces reference dropped vertices"
    n = len(keep)

    v = up["v_template_cm"][keep].astype(np.float64)
    names = list(up["expression_names"])
    exp_names = list(vidx["expressions"])
    exp = up["expression_deltas_cm"][[names.index(e) for e in exp_names]][:, keep].astype(np.float64)
    ident = up["identity_deltas_cm"][: args.n_identity][:, keep].astype(np.float64)

    # --- regions (cm, upstream frame) -------------------------------------------------------
    up_id = keep  # upstream vertex id of each kept vertex
    eyes = up_id >= EYEBALL_V[0]
    mouth = (up_id >= MOUTH_SOCKET_V[0]) & (up_id < MOUTH_SOCKET_V[1])
    eye_socket = (up_id >= EYE_SOCKET_V[0]) & (up_id < EYE_SOCKET_V[1])
    narrow_face = up_id < NARROW_FACE_V
    chin = v[remap[vidx["idx_to_landmark_verts"][8]]]  # iBUG landmark 8: chin tip
    skin = ~(eyes | mouth | eye_socket)
    # ears: outer full-face-area / head vertices lateral of the cheek and at ear height
    ears = skin & ~narrow_face & (np.abs(v[:, 0]) > 6.3) & (v[:, 1] > -3.5) & (v[:, 1] < 6.5) & (v[:, 2] < 3.0)
    # neck: below the plane through the chin bottom and the nape (tilted 0.5 down-forward)
    nape = np.array([0.0, chin[1] + NAPE_ABOVE_CHIN_CM, -8.0])
    tilt = (chin[1] - nape[1]) / (chin[2] - nape[2])

    def below_plane(p: np.ndarray) -> np.ndarray:
        """Signed distance (cm, vertical) below the chin-nape plane (positive = below)."""
        return (chin[1] + tilt * (p[:, 2] - chin[2])) - p[:, 1]

    depth = below_plane(v)
    neck = skin & (depth > 0)
    lower_neck = skin & (v[:, 1] < chin[1] - LOWER_NECK_BELOW_CHIN_CM)
    face = (narrow_face | eye_socket) & ~ears & ~neck
    scalp = skin & ~face & ~ears & ~neck
    head = ~lower_neck

    # --- joints (cm) --------------------------------------------------------------------------
    centres = {k: sphere_fit(v[remap[np.arange(*SCLERA[k])]])[0] for k in ("left", "right")}
    radii = {k: sphere_fit(v[remap[np.arange(*SCLERA[k])]])[1] for k in ("left", "right")}
    cut_ring = skin & (np.abs(v[:, 1] - (chin[1] - LOWER_NECK_BELOW_CHIN_CM)) < 0.6)
    neck_ring = skin & (np.abs(depth) < 0.6)
    mid = lambda m: (v[m].min(0) + v[m].max(0)) / 2  # noqa: E731  (ring centre, density-free)
    root_j = mid(cut_ring)
    neck_j = mid(neck_ring)
    root_j[0] = neck_j[0] = 0.0

    jaw_d = exp[exp_names.index("jawOpen")]
    # pivot placed anatomically at the jaw hinge (TMJ): 1 cm in front of the ear's front edge at
    # the ear's mid height (a rigid fit of jawOpen puts the fixed point behind the ear because
    # the blendshape also slides the jaw forward); the opening angle is fitted to jawOpen
    ear_v = v[ears & (v[:, 0] > 0)]
    jaw_j = np.array([0.0, ear_v[:, 1].mean() - 1.0, ear_v[:, 2].max() + 1.0])
    mag = np.linalg.norm(jaw_d, axis=1)
    chin_set = skin & (mag > 0.8 * mag.max())
    rel = v[chin_set] - jaw_j
    # small rotation about x: displacement ~ theta * (0, -z, y); least-squares theta, then exact
    lin = np.c_[np.zeros(len(rel)), -rel[:, 2], rel[:, 1]]
    theta = float((lin * jaw_d[chin_set]).sum() / (lin**2).sum())
    c, s_ = np.cos(theta), np.sin(theta)
    r = np.array([[1, 0, 0], [0, c, -s_], [0, s_, c]])
    t = jaw_j - r @ jaw_j
    angle = np.degrees(theta)
    rigid = (v - jaw_j) @ r.T + jaw_j - v
    jaw_w = np.clip((jaw_d * rigid).sum(1) / np.maximum((rigid**2).sum(1), 1e-12), 0, 1)
    jaw_w[~(skin | mouth)] = 0.0
    jaw_w[np.linalg.norm(rigid, axis=1) < 0.05 * np.linalg.norm(rigid[chin_set], axis=1).mean()] = 0
    adj = adjacency(faces, n)
    for _ in range(3):
        jaw_w = adj @ jaw_w
    jaw_w[jaw_w < JAW_MIN_WEIGHT] = 0.0  # no jaw leakage onto the upper face
    jaw_w[~(skin | mouth)] = 0.0

    head_w = np.clip(1.0 - depth / NECK_RAMP_CM, 0.0, 1.0)
    head_w = head_w * head_w * (3 - 2 * head_w)  # smoothstep
    head_w[~skin] = 1.0  # mouth socket, eye sockets, eyeballs move with the head
    eye_l = np.zeros(n)
    eye_r = np.zeros(n)
    eye_l[remap[np.arange(*EYEBALL["left"])]] = 1
    eye_r[remap[np.arange(*EYEBALL["right"])]] = 1
    jaw_w = np.minimum(jaw_w, 1 - eye_l - eye_r)
    weights = np.stack(
        [1 - head_w, head_w * (1 - jaw_w - eye_l - eye_r), head_w * jaw_w, head_w * eye_l, head_w * eye_r],
        axis=1,
    )
    assert np.allclose(weights.sum(1), 1) and (weights >= -1e-9).all()

    joints = np.stack([root_j, neck_j, jaw_j, centres["left"], centres["right"]])
    anchors = [
        cut_ring,
        neck_ring,
        skin & (np.linalg.norm(v - jaw_j, axis=1) < np.sort(np.linalg.norm(v[skin] - jaw_j, axis=1))[40]),
        eye_l > 0,
        eye_r > 0,
    ]
    regressor = np.stack([a / a.sum() for a in map(lambda a: a.astype(np.float64), anchors)])
    for row, side in ((3, "left"), (4, "right")):
        regressor[row] = eye_centre_regressor(v, ident, remap[np.arange(*SCLERA[side])])

    # --- frame: metres, head bbox centred ---------------------------------------------------
    hv = v[~neck & ~lower_neck]
    centre = (hv.min(0) + hv.max(0)) / 2
    centre[0] = 0.0
    cm = 0.01
    v_m = (v - centre) * cm
    joints_m = (joints - centre) * cm
    offset_m = joints_m - regressor @ v_m

    lmk_vertices = remap[np.asarray(vidx["idx_to_landmark_verts"])]
    assert (lmk_vertices >= 0).all()
    lmk_faces, lmk_bary = embed_vertices_as_landmarks(faces, lmk_vertices)

    # deltas stored as float16 millimetres
    ident_mm = (ident * 10).astype(np.float16)
    exp_mm = (exp * 10).astype(np.float16)
    err = max(np.abs(ident_mm.astype(np.float64) - ident * 10).max(), np.abs(exp_mm.astype(np.float64) - exp * 10).max())

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out = OUT_DIR / "ict_light.npz"
    regions = dict(face=face, scalp=scalp, ears=ears, eyes=eyes, neck=neck, mouth=mouth, head=head,
                   lower_neck=lower_neck)
    np.savez_compressed(
        out,
        v_template=v_m.astype(np.float32),
        faces=faces.astype(np.int32),
        identity_mm=ident_mm,
        expression_mm=exp_mm,
        expression_names=np.array(exp_names),
        lbs_weights=weights.astype(np.float32),
        joint_regressor=regressor.astype(np.float32),
        joint_offset=offset_m.astype(np.float32),
        parents=np.array([-1, 0, 1, 1, 1], dtype=np.int32),
        landmark_faces=lmk_faces.astype(np.int32),
        landmark_bary=lmk_bary,
        landmark_vertices=lmk_vertices.astype(np.int32),
        upstream_vertex_ids=keep.astype(np.int32),
        **{f"region_{k}": m for k, m in regions.items()},
    )
    shutil.copy(args.src / "LICENSE", OUT_DIR / "LICENSE_ICT-FaceKit")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): {n} vertices, {len(faces)} faces, "
          f"{len(ident)} identity + {len(exp)} expression modes")
    print(f"float16 max abs error: {err:.5f} mm")
    resid = np.linalg.norm(v[chin_set] @ r.T + t - v[chin_set] - jaw_d[chin_set], axis=1).max() * 10
    print(f"jaw pivot (m, model frame): {joints_m[2].round(4)}; jawOpen ~ {angle:.1f} deg about it "
          f"(chin: max {resid:.1f} mm off a pure rotation: jawOpen also slides the jaw)")
    print(f"eye radii (cm): {radii}; joints (m):\n{joints_m.round(4)}")
    print("region sizes:", {k: int(m.sum()) for k, m in regions.items()})


if __name__ == "__main__":
    main()
