"""Which head-model regions NHA's edited head (ICT, subdivided) puts at the back of the head: vertex
counts per region, overall and among the canonical vertices behind the rearmost ear vertex.
Run as: python reports/nha/region_census.py SUBJECT"""
import sys

from nha_bench.datasets.format import Subject
from nha_bench.methods.nha.head_builder import build_head

head, note = build_head(Subject(sys.argv[1]), 100, 53, subdivide=True)
vertices = head.canonical_vertices.numpy()
back = vertices[:, 2] < vertices[head.regions["ears"].numpy(), 2].min()  # z towards the viewer
print(note)
for name, region in head.regions.items():
    region = region.numpy()
    if region.any():
        print(f"{name}: {int(region.sum())} vertices, {int((region & back).sum())} of the {int(back.sum())} behind the ears")
