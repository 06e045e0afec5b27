"""How far NHA's offset network G moves each head-model region: |G(v, neutral pose)| in mm (as the
mesh gets it: zero on `offset_fixed_regions`) per region (mean, 95th percentile, max) and the component along the vertex normal (outward growth);
`rim` is the mesh's open boundary (the cut at the bottom of the neck and any other hole), with its
vertical component (model y, up).
Run as: python reports/nha/offset_magnitudes.py SUBJECT CHECKPOINT_DIR [OVERRIDES_JSON]"""
import json
import sys

import torch
import trimesh

from nha_bench.datasets.format import Subject
from nha_bench.methods.nha import Nha

torch.set_num_threads(2)
method = Nha.fitted(Subject(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3] if len(sys.argv) > 3 else "{}"))
avatar = method.avatar
with torch.no_grad():
    offsets = avatar.neutral_offsets()[0] * 1000.0
    outward = (offsets * avatar.template_normals).sum(-1)
size = offsets.norm(dim=-1)
template = trimesh.Trimesh(avatar.head.canonical_vertices.cpu().numpy(), avatar.faces.cpu().numpy(), process=False)
boundary = template.edges_sorted[trimesh.grouping.group_rows(template.edges_sorted, require_count=1)]
rim = torch.zeros(len(size), dtype=torch.bool)
rim[torch.from_numpy(boundary.flatten())] = True
regions = {name: avatar.head.regions[name].cpu() for name in ("face", "scalp", "ears", "neck")} | {"rim": rim}
print(f"rim: {int(rim.sum())} vertices, vertical offset mean {offsets[rim, 1].mean():.2f} mm, min {offsets[rim, 1].min():.2f}")
for name, r in regions.items():
    print(f"{name}: |offset| mean {size[r].mean():.2f} mm, p95 {size[r].quantile(0.95):.2f}, max {size[r].max():.2f}; "
          f"outward mean {outward[r].mean():.2f}, p95 {outward[r].quantile(0.95):.2f}")
