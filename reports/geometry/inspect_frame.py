import numpy as np, trimesh
from pathlib import Path
from nha_bench.datasets import Subject
from nha_bench.outputs import read_mesh, read_normal
from nha_bench.metrics.geometry import point_surface_distances
root = Path("/tmp/geo/subject_f1"); s = Subject(root)
val = s.split("val"); print("val frames", val)
i = int(val[0])
gt, pr = s.mesh(i), read_mesh(root / "outputs", i)
for name, m in (("gt", gt), ("pred", pr)):
    v = m.vertices; print(name, "nv", len(v), "nf", len(m.faces), "masks", {k: int(x.sum()) for k, x in m.vertex_masks.items()})
    print("  centroid", v.mean(0).round(1), "extent", (v.max(0) - v.min(0)).round(1))
head = gt.vertex_masks["head"]; hf = gt.faces[head[gt.faces].all(1)]
gtm = trimesh.Trimesh(gt.vertices, hf, process=False)
print("gt head centroid", gt.vertices[head].mean(0).round(1), "extent", (gt.vertices[head].max(0)-gt.vertices[head].min(0)).round(1))
pm = trimesh.Trimesh(pr.vertices, pr.faces, process=False)
pts, _ = trimesh.sample.sample_surface(pm, 3000, seed=0)
print("unaligned mean dist", point_surface_distances(pts, gtm.vertices, gtm.faces).mean())
for scale in (False, True):
    M, tr, cost = trimesh.registration.icp(pts, gtm, initial=np.eye(4), threshold=1e-6, max_iterations=50, reflection=False, scale=scale)
    d = point_surface_distances(tr, gtm.vertices, gtm.faces)
    sc = np.cbrt(np.linalg.det(M[:3, :3]))
    ang = np.degrees(np.arccos(np.clip((np.trace(M[:3,:3]/sc)-1)/2, -1, 1)))
    print(f"icp scale={scale}: mean {d.mean():.2f} max {d.max():.2f} scale {sc:.3f} rot {ang:.2f} deg t {M[:3,3].round(1)} |t| {np.linalg.norm(M[:3,3]):.1f}")
# normals
n_gt, n_pr = s.normal(i), read_normal(root / "outputs", i)
mg = np.linalg.norm(n_gt, axis=-1) > .5; mp = np.linalg.norm(n_pr, axis=-1) > .5; m = mg & mp
print("mask px gt", mg.sum(), "pred", mp.sum(), "both", m.sum())
print("mean n gt", n_gt[mg].mean(0).round(2), "mean n pred", n_pr[mp].mean(0).round(2))
def ang(a, b):
    c = (a*b).sum(-1)/np.linalg.norm(a,axis=-1)/np.linalg.norm(b,axis=-1); return np.degrees(np.arccos(np.clip(c,-1,1)))
for flip in ([1,1,1],[-1,1,1],[1,-1,1],[1,1,-1],[1,-1,-1],[-1,-1,-1]):
    print("flip", flip, "mean angle", ang(n_pr[m]*np.array(flip), n_gt[m]).mean().round(2))
np.savez("/tmp/geo/frame.npz", n_gt=n_gt, n_pr=n_pr, m=m, mg=mg, mp=mp)
