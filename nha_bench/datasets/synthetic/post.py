"""Turn one rendered multilayer EXR into the dataset's per-frame files (numpy only, no bpy).

Conventions: OpenCV camera (x right, y down, z forward); world = MakeHuman's (y up, metres).
Labels (format.LABELS): body 1 (ear faces 3, inside of the head seen through the mouth 5),
eyes 2, eyebrows and eyelashes 1 (skin), teeth and tongue 5 (mouth interior), hair 4.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nha_bench.datasets.format import SubjectWriter
from nha_bench.errors import DatasetError
from nha_bench.mesh import Mesh

KIND_LABELS = {"body": 1, "eyes": 2, "eyebrows": 1, "eyelashes": 1, "teeth": 5, "tongue": 5, "hair": 4}
EAR, MOUTH = 3, 5
BACKGROUND = 1.0  # white, composited in linear light before the sRGB curve
VISIBILITY_TOL_M = 0.01  # a landmark is visible when no surface lies more than 1 cm in front of it
REGIONS_PATH = Path(__file__).with_name("regions.json")


def load_regions() -> dict[str, list[int]]:
    """Base-mesh (hm08) vertex ids: ``landmarks`` (68, iBUG order), ``face``, ``ears``."""
    return json.loads(REGIONS_PATH.read_text())


@dataclass
class FrameContext:
    """Everything per subject that converting a frame needs."""

    K: np.ndarray
    res: int
    kinds: list[str]
    n_body: int
    body_faces: np.ndarray  # (F, 3) triangles, body-local vertex ids
    vertex_masks: dict[str, np.ndarray]
    landmark_ids: np.ndarray  # (68,) body-local vertex ids
    work: Path
    hair_rows: tuple[int, int] = (0, 0)  # rows of the hair proxy in a frame's coords
    hair_faces: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int64))  # hair-local triangles

    @classmethod
    def from_job(cls, job: dict) -> "FrameContext":
        work = Path(job["work"])
        ident = json.loads((work / "identity.json").read_text())
        arrays = np.load(work / "identity.npz")
        base_ids = arrays["body_base_ids"]
        local = {int(b): i for i, b in enumerate(base_ids)}
        regions = load_regions()
        missing = [b for b in regions["landmarks"] if b not in local]
        if missing:
            raise DatasetError(f"landmark vertices {missing[:5]} were cut from the body mesh", work / "identity.npz")
        face = np.zeros(len(base_ids), bool)
        face[[local[b] for b in regions["face"] if b in local]] = True
        head = arrays["body_head_weight"] > 0.5
        kinds = [o["kind"] for o in ident["objects"]]
        counts = [o["n_vertices"] for o in ident["objects"]]
        return cls(
            K=np.asarray(job["K"], np.float64),
            res=int(job["res"]),
            kinds=kinds,
            n_body=len(base_ids),
            body_faces=triangulate(arrays["body_faces"]),
            vertex_masks={"face": face & head, "head": head},
            landmark_ids=np.array([local[b] for b in regions["landmarks"]], np.int64),
            work=work,
            hair_rows=(sum(counts[: kinds.index("hair")]), sum(counts[: kinds.index("hair") + 1])),
            hair_faces=triangulate(arrays["hair_faces"]).astype(np.int64),
        )


def triangulate(quads: np.ndarray) -> np.ndarray:
    """(F, 4) quads (a repeated vertex marks a triangle) -> (T, 3) triangles."""
    a = quads[:, [0, 1, 2]]
    b = quads[:, [0, 2, 3]]
    is_quad = (quads[:, 3] != quads[:, 0]) & (quads[:, 3] != quads[:, 2])
    tris = np.concatenate([a, b[is_quad]])
    return tris[(tris[:, 0] != tris[:, 1]) & (tris[:, 1] != tris[:, 2]) & (tris[:, 0] != tris[:, 2])]


def cap_edges(quads: np.ndarray, near_cut: np.ndarray) -> np.ndarray:
    """Boundary edges of the neck cut, reversed, so that (b, a, centre) triangles close the hole
    with the winding of the surrounding faces (the inside of the head never shows from below).
    ``quads``: (F, 4) with a repeated vertex for triangles; ``near_cut``: (V,) bool."""
    edges = set()
    for f in quads:
        loop = [int(v) for k, v in enumerate(f) if v not in f[:k]]
        edges.update(zip(loop, loop[1:] + loop[:1]))
    boundary = [(b, a) for a, b in edges if (b, a) not in edges and near_cut[a] and near_cut[b]]
    return np.array(sorted(boundary), np.int32).reshape(-1, 2)


def read_exr(path: Path) -> dict[str, np.ndarray]:
    """Channels of a Blender multilayer EXR (rows top first) keyed by pass name."""
    import OpenEXR  # optional dependency of the generator only

    out: dict[str, np.ndarray] = {}
    with OpenEXR.File(str(path)) as f:
        for part in f.parts:
            for name, channel in part.channels.items():
                out[name.removeprefix("ViewLayer.")] = channel.pixels
    return out


def srgb(linear: np.ndarray) -> np.ndarray:
    """The sRGB transfer curve (IEC 61966-2-1), linear [0, 1] -> display [0, 1]."""
    x = np.clip(linear, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def to_camera(points_world: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    return points_world @ R.T + t


def project(points_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pinhole projection to pixel coordinates (pixel centres at +0.5)."""
    uv = points_cam @ K.T
    return uv[:, :2] / uv[:, 2:3]


def labels(channels: dict[str, np.ndarray], kinds: list[str], mask: np.ndarray) -> np.ndarray:
    """Per-pixel project label from the object index, ear and backface AOVs."""
    index = np.round(channels["Object Index.X"]).astype(int)
    lut = np.zeros(len(kinds) + 1, np.uint8)
    for i, kind in enumerate(kinds):
        lut[i + 1] = KIND_LABELS[kind]
    lab = lut[np.clip(index, 0, len(kinds))]
    body = index == kinds.index("body") + 1
    lab[body & (channels["ear.X"] > 0.5)] = EAR
    lab[body & (channels["backface.X"] > 0.5)] = MOUTH
    lab[~mask] = 0
    lab[mask & (lab == 0)] = KIND_LABELS["hair"]  # only semi-transparent hair strands reach here
    return lab


def frame_arrays(channels: dict[str, np.ndarray], coords: np.ndarray, R: np.ndarray, t: np.ndarray,
                 ctx: FrameContext) -> dict[str, np.ndarray | Mesh]:
    """rgb, mask, parsing, normal, mesh (mm, camera frame) and landmarks (68, 3) of one frame."""
    rgba = channels["Combined"]
    alpha = np.clip(rgba[..., 3], 0.0, 1.0)
    mask = alpha > 0.5
    rgb = srgb(rgba[..., :3] + (1.0 - alpha[..., None]) * BACKGROUND)
    n_world = np.stack([channels[f"Normal.{c}"] for c in "XYZ"], axis=-1)
    normal = n_world @ R.T  # world -> OpenCV camera
    norm = np.linalg.norm(normal, axis=-1, keepdims=True)
    normal = np.where(mask[..., None] & (norm > 0.5), normal / np.maximum(norm, 1e-8), 0.0)
    body_cam = to_camera(coords[: ctx.n_body].astype(np.float64), R, t)
    hair_cam = to_camera(coords[slice(*ctx.hair_rows)].astype(np.float64), R, t)
    mesh = ground_truth_mesh(body_cam, hair_cam, ctx)
    lmk_cam = body_cam[ctx.landmark_ids]
    uv = project(lmk_cam, ctx.K)
    depth = np.where(mask, channels["Depth.Z"], np.inf)
    px = np.clip(np.floor(uv).astype(int), 0, ctx.res - 1)
    inside = (uv >= 0).all(axis=1) & (uv < ctx.res).all(axis=1)
    # farthest surface in the 3x3 pixels around: tolerates pixel quantisation at silhouettes and lids
    pad = np.pad(depth, 1, constant_values=np.inf)
    surface = np.max([pad[px[:, 1] + dy, px[:, 0] + dx] for dy in range(3) for dx in range(3)], axis=0)
    visible = inside & (lmk_cam[:, 2] <= surface + VISIBILITY_TOL_M)
    landmarks = np.concatenate([uv, visible[:, None]], axis=1).astype(np.float32)
    return {"rgb": rgb, "mask": mask, "parsing": labels(channels, ctx.kinds, mask), "normal": normal,
            "mesh": mesh, "landmarks": landmarks}


def ground_truth_mesh(body_cam: np.ndarray, hair_cam: np.ndarray, ctx: FrameContext) -> Mesh:
    """The frame's ground-truth surface in mm: head and neck skin plus the hair proxy (the geometry
    the images show, as the paper's synthetic meshes, whose hair bun is part of the ground truth).
    Vertex masks: ``face`` and ``head`` on the skin only, ``hair`` on the hair vertices."""
    n_hair = len(hair_cam)
    masks = {k: np.concatenate([m, np.zeros(n_hair, bool)]) for k, m in ctx.vertex_masks.items()}
    masks["hair"] = np.concatenate([np.zeros(ctx.n_body, bool), np.ones(n_hair, bool)])
    faces = np.concatenate([ctx.body_faces, ctx.hair_faces + ctx.n_body])
    return Mesh(vertices=np.concatenate([body_cam, hair_cam]) * 1000.0, faces=faces, vertex_masks=masks)


def finish_frame(exr: Path, index: int, coords: np.ndarray, R: np.ndarray, t: np.ndarray, ctx: FrameContext,
                 writer: SubjectWriter) -> None:
    """Convert and write one frame; landmarks go to the work folder first (the mesh file comes last)."""
    out = frame_arrays(read_exr(exr), coords, R, t, ctx)
    lmk = ctx.work / "landmarks" / f"{index:06d}.npy"
    lmk.parent.mkdir(parents=True, exist_ok=True)
    np.save(lmk, out["landmarks"])
    writer.write_frame(index, rgb=out["rgb"], mask=out["mask"], parsing=out["parsing"], normal=out["normal"],
                       mesh=out["mesh"])
    exr.unlink()
