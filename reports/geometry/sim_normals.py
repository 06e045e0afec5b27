import numpy as np, trimesh, igl, imageio.v3 as iio
from pathlib import Path
from nha_bench.datasets import Subject
from nha_bench.outputs import read_mesh, read_normal
root = Path("/tmp/geo/subject_f1"); s = Subject(root); i = 8
gt, pr = s.mesh(i), read_mesh(root / "outputs", i)
h = gt.vertex_masks["head"]; F = gt.faces[h[gt.faces].all(1)]; V = gt.vertices
P, _ = trimesh.sample.sample_surface(trimesh.Trimesh(pr.vertices, pr.faces, process=False), 2000, seed=0)
M = np.eye(4); M[:3, 3] = V[np.unique(F)].mean(0) - P.mean(0)
for k in range(100):
    Q = P @ M[:3, :3].T + M[:3, 3]; d2, _, C = igl.point_mesh_squared_distance(Q, V, F)
    M, _, _ = trimesh.registration.procrustes(P, C, reflection=False, scale=True, return_cost=True)
d2, _, _ = igl.point_mesh_squared_distance(P @ M[:3, :3].T + M[:3, 3], V, F)
print("similarity ICP frame 8: scale", round(float(np.cbrt(np.linalg.det(M[:3, :3]))), 3), "mean dist", round(float(np.sqrt(d2).mean()), 2))
n_gt, n_pr = s.normal(i), read_normal(root / "outputs", i)
m = (np.linalg.norm(n_gt, axis=-1) > .5) & (np.linalg.norm(n_pr, axis=-1) > .5)
c = (n_gt * n_pr).sum(-1) / np.maximum(np.linalg.norm(n_gt, axis=-1) * np.linalg.norm(n_pr, axis=-1), 1e-9)
a = np.degrees(np.arccos(np.clip(c, -1, 1))); a[~m] = 0
print("angle in mask: mean", a[m].mean().round(2), "median", np.median(a[m]).round(2), "p90", np.percentile(a[m], 90).round(1))
parse = s.parsing(i) if hasattr(s, "parsing") else None
to8 = lambda n: ((np.clip(n, -1, 1) * 0.5 + 0.5) * 255 * (np.linalg.norm(n, axis=-1, keepdims=True) > .5)).astype(np.uint8)
err = (np.clip(a / 90, 0, 1) * 255).astype(np.uint8); err = np.stack([err, err, err], -1); err[~m] = [0, 0, 80]
img = np.concatenate([to8(n_gt), to8(n_pr), err], 1).repeat(3, 0).repeat(3, 1)
iio.imwrite("reports/geometry/normals_val000008.png", img)
# per-row / per-component bias
print("mean components in mask gt", n_gt[m].mean(0).round(3), "pred", n_pr[m].mean(0).round(3))
