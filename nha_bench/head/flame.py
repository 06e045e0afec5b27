"""FLAME from the user's own ``generic_model.pkl`` (FLAME cannot be redistributed or downloaded).

The official file is a Python 2 pickle holding chumpy arrays and a scipy sparse matrix. It is
read WITHOUT chumpy by a restricted unpickler: numpy's array reconstructors are the only real
globals it builds; chumpy and scipy.sparse objects become stand-ins that keep their pickled state
(chumpy leaves keep their array under ``x``; sparse matrices are rebuilt from data / indices /
indptr), and any other global (e.g. ``os.system`` in a tampered file) is refused.

Standard FLAME LBS: shape and expression blendshapes, 5 joints regressed from the shaped
vertices (global, neck, jaw, left eye, right eye), pose-corrective blendshapes from the 4
non-root joint rotations, linear blend skinning.
"""

from __future__ import annotations

import codecs
import copyreg
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse
import torch
from torch import Tensor

from nha_bench.errors import UnavailableError
from nha_bench.head.base import HeadModel, HeadParams
from nha_bench.head.lbs import axis_angle_to_matrix, lbs
from nha_bench.head.regions import geometric_regions
from nha_bench.registry import HEAD_MODELS

REQUIRED_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
FLAME_SHAPE_DIMS = 300  # expression components start after the 300 shape components
FIX = (
    "pass the official FLAME generic_model.pkl (FLAME 2020 or 2017, https://flame.is.tue.mpg.de, "
    "registration needed) as path=..."
)


class _Pickled:
    """Stand-in for a chumpy / scipy.sparse object: keeps the pickled state, builds nothing."""

    source = ""

    def __setstate__(self, state: Any) -> None:
        self.state = state


_STANDINS: dict[str, type] = {}
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}
_BUILTINS = {("copyreg", "_reconstructor"): copyreg._reconstructor, ("builtins", "object"): object,
             ("builtins", "set"): set, ("builtins", "frozenset"): frozenset, ("builtins", "list"): list,
             ("builtins", "dict"): dict, ("builtins", "tuple"): tuple,
             ("_codecs", "encode"): codecs.encode}  # protocol-2 bytes from Python 3


class _FlameUnpickler(pickle.Unpickler):
    """Unpickler that maps chumpy/scipy.sparse classes to stand-ins and refuses foreign globals."""

    def find_class(self, module: str, name: str) -> Any:
        module = {"__builtin__": "builtins", "copy_reg": "copyreg"}.get(module, module)  # Python 2
        if module.split(".")[0] in ("chumpy", "scipy"):
            key = f"{module}.{name}"
            if key not in _STANDINS:
                _STANDINS[key] = type(name, (_Pickled,), {"source": key})
            return _STANDINS[key]
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        if (module, name) in _BUILTINS:
            return _BUILTINS[(module, name)]
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def _state_dict(obj: _Pickled) -> dict:
    s = obj.state
    if isinstance(s, tuple):  # (dict state, slot state)
        s = next((x for x in s if isinstance(x, dict)), {})
    return s if isinstance(s, dict) else {}


def _to_array(obj: Any, key: str, path: Path) -> np.ndarray:
    """numpy array from an ndarray, a chumpy stand-in (its ``x``) or a sparse stand-in."""
    if isinstance(obj, _Pickled):
        st = _state_dict(obj)
        if obj.source.startswith("chumpy") and "x" in st:
            return _to_array(st["x"], key, path)
        if obj.source.startswith("scipy.sparse") and {"data", "indices", "indptr"} <= set(st):
            fmt = st.get("format", obj.source.rsplit(".", 1)[-1][:3])
            cls = scipy.sparse.csr_matrix if fmt == "csr" else scipy.sparse.csc_matrix
            shape = st.get("_shape", st.get("shape"))
            return cls((st["data"], st["indices"], st["indptr"]), shape=shape).toarray()
        raise UnavailableError(
            f"FLAME key {key!r} holds a {obj.source} object that is not a plain array", path, fix=FIX
        )
    if scipy.sparse.issparse(obj):
        return obj.toarray()
    return np.asarray(obj)


def load_flame_pickle(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a FLAME ``generic_model.pkl`` (chumpy-free); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise UnavailableError("FLAME model file not found", path, fix=FIX)
    try:
        with open(path, "rb") as fh:
            raw = _FlameUnpickler(fh, encoding="latin1").load()
    except Exception as e:  # any unpickling failure means a corrupt / foreign file
        raise UnavailableError(f"cannot read FLAME model file ({type(e).__name__}: {e})", path, fix=FIX) from e
    if not isinstance(raw, dict):
        raise UnavailableError(f"FLAME file holds a {type(raw).__name__}, not a dict", path, fix=FIX)
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise UnavailableError(f"FLAME file lacks keys {missing}", path, fix=FIX)
    return {k: _to_array(raw[k], k, path) for k in REQUIRED_KEYS}


def load_landmark_embedding(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """68 (face index, barycentric) pairs from a FLAME landmark embedding (.npy dict or .pkl).

    Accepts DECA/NHA's ``landmark_embedding.npy`` (``full_lmk_faces_idx``/``full_lmk_bary_coords``)
    or any pickle/npz with ``lmk_face_idx``/``lmk_b_coords`` holding 68 entries.
    """
    path = Path(path)
    if not path.is_file():
        raise UnavailableError("FLAME landmark embedding not found", path,
                               fix="pass landmark_embedding.npy (from DECA/NHA) or omit it")
    try:
        if path.suffix == ".pkl":
            with open(path, "rb") as fh:
                d = _FlameUnpickler(fh, encoding="latin1").load()
        else:
            d = np.load(path, allow_pickle=True, encoding="latin1")
            d = d[()] if isinstance(d, np.ndarray) else dict(d)
        pairs = [("full_lmk_faces_idx", "full_lmk_bary_coords"), ("lmk_face_idx", "lmk_b_coords")]
        fk, bk = next(p for p in pairs if p[0] in d and p[1] in d)
        faces = np.asarray(_to_array(d[fk], fk, path)).reshape(-1).astype(np.int64)
        bary = np.asarray(_to_array(d[bk], bk, path), dtype=np.float32).reshape(-1, 3)
    except StopIteration:
        raise UnavailableError("landmark embedding has no face-index/barycentric keys", path,
                               fix="use DECA's landmark_embedding.npy") from None
    except UnavailableError:
        raise
    except Exception as e:
        raise UnavailableError(f"cannot read landmark embedding ({type(e).__name__}: {e})", path) from e
    if len(faces) != 68 or len(bary) != 68:
        raise UnavailableError(
            f"landmark embedding has {len(faces)} landmarks, need the 68 iBUG points", path,
            fix="use DECA's landmark_embedding.npy (full_lmk_*: static 51 + jawline 17)",
        )
    return faces, bary


def load_flame_masks(path: str | Path, n_vertices: int) -> dict[str, np.ndarray]:
    """Region masks from FLAME's ``FLAME_masks.pkl`` (vertex index lists per part)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            parts = _FlameUnpickler(fh, encoding="latin1").load()
        parts = {k: np.asarray(_to_array(v, k, path)).astype(np.int64) for k, v in parts.items()}
    except Exception as e:
        raise UnavailableError(f"cannot read FLAME masks ({type(e).__name__}: {e})", path,
                               fix="pass FLAME_masks.pkl from the FLAME website, or omit it") from e

    def mask(*names: str) -> np.ndarray:
        m = np.zeros(n_vertices, dtype=bool)
        for n in names:
            if n not in parts:
                raise UnavailableError(f"FLAME masks lack part {n!r}", path, fix="use FLAME_masks.pkl")
            m[parts[n]] = True
        return m

    eyes = mask("left_eyeball", "right_eyeball")
    ears = mask("left_ear", "right_ear")
    face = mask("face") & ~eyes & ~ears
    neck = mask("neck") & ~face
    scalp = ~(face | ears | eyes | neck)
    return dict(face=face, scalp=scalp, ears=ears, eyes=eyes, neck=neck,
                mouth=np.zeros(n_vertices, dtype=bool))


class FlameHeadModel(HeadModel):
    """FLAME LBS: (shape, expr, 15-d pose, translation) -> vertices (B, 5023, 3), metres."""

    name = "flame"

    def __init__(
        self,
        path: str | Path,
        n_shape: int = 300,
        n_expr: int = 100,
        landmark_embedding: str | Path | None = None,
        masks: str | Path | None = None,
    ):
        super().__init__()
        path = Path(path)
        d = load_flame_pickle(path)
        v = d["v_template"].astype(np.float32)
        nv = len(v)
        sd = d["shapedirs"]
        if v.ndim != 2 or v.shape[1] != 3 or sd.shape[:2] != (nv, 3):
            raise UnavailableError(f"FLAME arrays disagree: v_template {v.shape}, shapedirs {sd.shape}", path, fix=FIX)
        n_id = min(FLAME_SHAPE_DIMS, sd.shape[2])
        if n_shape > n_id or n_expr > sd.shape[2] - n_id:
            raise UnavailableError(
                f"FLAME file has {n_id} shape and {sd.shape[2] - n_id} expression components, asked "
                f"for n_shape={n_shape}, n_expr={n_expr}", path, fix="lower n_shape / n_expr",
            )
        self.n_shape, self.n_expr = n_shape, n_expr
        faces = d["f"].astype(np.int64)
        if landmark_embedding is not None:
            lmk_faces, lmk_bary = load_landmark_embedding(landmark_embedding)
        else:  # no embedding: landmarks() raises
            lmk_faces, lmk_bary = np.zeros(0, np.int64), np.zeros((0, 3), np.float32)
        weights = d["weights"].astype(np.float32)
        parents = [int(p) for p in d["kintree_table"][0].astype(np.int64)]
        parents[0] = -1
        j_reg = d["J_regressor"].astype(np.float32)
        geo = geometric_regions(v, weights, j_reg @ v)
        regions = {**geo, **load_flame_masks(masks, nv)} if masks is not None else geo
        regions["head"] = ~regions["lower_neck"]
        self._set_topology(faces, v, regions, lmk_faces, lmk_bary)
        t = lambda a: torch.as_tensor(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
        self.register_buffer("shapedirs", t(sd[:, :, :n_shape].reshape(nv * 3, n_shape).T))
        self.register_buffer("exprdirs", t(sd[:, :, n_id:n_id + n_expr].reshape(nv * 3, n_expr).T))
        pd = d["posedirs"]
        self.register_buffer("posedirs", t(pd.reshape(nv * 3, pd.shape[-1]).T))  # (9*(J-1), V*3)
        self.register_buffer("joint_regressor", t(j_reg))
        self.register_buffer("lbs_weights", t(weights))
        self.parents = parents
        self.source = path

    def forward(self, params: HeadParams) -> Tensor:
        """Posed vertices (B, V, 3), metres."""
        params.check(self)
        b = params.batch_size
        v = self.canonical_vertices + (params.shape @ self.shapedirs + params.expr @ self.exprdirs).view(b, -1, 3)
        joints = torch.einsum("jv,bvk->bjk", self.joint_regressor, v)
        rot = axis_angle_to_matrix(params.pose.view(b, -1, 3))
        eye = torch.eye(3, dtype=rot.dtype, device=rot.device)
        pose_feature = (rot[:, 1:] - eye).reshape(b, -1)
        v = v + (pose_feature @ self.posedirs).view(b, -1, 3)
        return lbs(v, joints, params.pose, self.parents, self.lbs_weights) + params.translation[:, None]

    def landmarks(self, vertices: Tensor) -> Tensor:
        """iBUG-68 landmarks; needs the landmark embedding file."""
        if self.landmark_faces.numel() == 0:
            raise UnavailableError(
                "this FLAME model was loaded without a landmark embedding", self.source,
                fix="pass landmark_embedding='.../landmark_embedding.npy'",
            )
        return super().landmarks(vertices)


@HEAD_MODELS.register("flame")
def _flame(path: str | Path | None = None, **kw) -> FlameHeadModel:
    if path is None:
        raise UnavailableError("the FLAME head model needs the user's FLAME file", fix=FIX)
    return FlameHeadModel(path, **kw)

