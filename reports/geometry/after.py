import time, numpy as np, trimesh
from pathlib import Path
from nha_bench.datasets import Subject
from nha_bench.evaluation import evaluate_outputs
from nha_bench.metrics.base import MeshPair
from nha_bench.metrics.geometry import HausdorffFull
from nha_bench.mesh import Mesh
from nha_bench.outputs import read_mesh
root = Path("/tmp/geo/subject_f1"); s = Subject(root)
t0 = time.perf_counter(); res, sk = evaluate_outputs(root / "outputs", s, "val"); print("evaluate_outputs", round(time.perf_counter() - t0, 1), "s")
for r in res:
    if r.spec.inputs in ("mesh", "normal"): print(r.spec.name, round(r.value, 3), {k: round(v, 2) for k, v in r.extra.items()})
# timing against a ~30k-face GT head (subdivided GT)
gt, pr = s.mesh(8), read_mesh(root / "outputs", 8)
v, f = trimesh.remesh.subdivide(gt.vertices, gt.faces)
masks = {"head": np.ones(len(v), bool)}
big = Mesh(v, f, masks); print("big GT faces", len(f))
m = HausdorffFull(); t0 = time.perf_counter(); sc = m.score([MeshPair(pr, big)]); print("per frame s (20k samples, %d faces)" % len(f), round(time.perf_counter() - t0, 2), sc.values, {k: x.round(2) for k, x in sc.extras.items()})
