import numpy as np, trimesh, igl, time
from pathlib import Path
from scipy.spatial.transform import Rotation
from nha_bench.datasets import Subject
from nha_bench.outputs import read_mesh
root = Path("/tmp/geo/subject_f1"); s = Subject(root)
def icp(P, V, F, M0, iters=50, tol=1e-6):
    M = M0.copy(); prev = np.inf
    for k in range(iters):
        Q = P @ M[:3, :3].T + M[:3, 3]
        d2, _, C = igl.point_mesh_squared_distance(Q, V, F)
        err = np.sqrt(d2).mean()
        if prev - err < tol * max(prev, 1e-12) and k: break
        prev = err
        M, _, _ = trimesh.registration.procrustes(P, C, reflection=False, scale=False, return_cost=True)
    return M, err, k
for i in s.split("val"):
    gt, pr = s.mesh(i), read_mesh(root / "outputs", i)
    h = gt.vertex_masks["head"]; F = gt.faces[h[gt.faces].all(1)]; V = gt.vertices
    P, _ = trimesh.sample.sample_surface(trimesh.Trimesh(pr.vertices, pr.faces, process=False), 2000, seed=0)
    for name, M0 in (("identity", np.eye(4)), ("centroid", np.eye(4))):
        if name == "centroid": M0[:3, 3] = V[np.unique(F)].mean(0) - P.mean(0)
        t0 = time.perf_counter(); M, err, k = icp(P, V, F, M0); dt = time.perf_counter() - t0
        c = P.mean(0); shift = (c @ M[:3,:3].T + M[:3,3]) - c
        rv = Rotation.from_matrix(M[:3,:3]).as_euler("xyz", degrees=True)
        print(i, name, f"mean {err:.2f} iters {k} {dt:.2f}s rot(xyz deg) {rv.round(1)} centroid shift {shift.round(1)} |t| {np.linalg.norm(M[:3,3]):.1f}")
