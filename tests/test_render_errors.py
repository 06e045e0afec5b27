"""Bad renderer input raises RenderInputError (an NhaBenchError) naming the argument."""

from __future__ import annotations

import pytest
import torch

from nha_bench.errors import NhaBenchError
from nha_bench.render import RenderInputError, interpolate, project, rasterize, soft_silhouette, vertex_normals

V = torch.tensor([[[-1.0, -1, 3], [1, -1, 3], [0, 1, 3]]])
F = torch.tensor([[0, 1, 2]])
K = torch.tensor([[10.0, 0, 8], [0, 10.0, 8], [0, 0, 1]])


@pytest.mark.parametrize(
    "call, arg",
    [
        (lambda: rasterize(V[..., :2], F, K, 16, 16), "verts_cam"),
        (lambda: rasterize(V.numpy(), F, K, 16, 16), "verts_cam"),
        (lambda: rasterize(V.long(), F, K, 16, 16), "verts_cam"),
        (lambda: rasterize(torch.where(V == 3, float("nan"), V), F, K, 16, 16), "verts_cam"),
        (lambda: rasterize(V, torch.tensor([[0, 1, 3]]), K, 16, 16), "faces"),
        (lambda: rasterize(V, torch.tensor([[0, -1, 2]]), K, 16, 16), "faces"),
        (lambda: rasterize(V, F.float(), K, 16, 16), "faces"),
        (lambda: rasterize(V, F[:, :2], K, 16, 16), "faces"),
        (lambda: rasterize(V, F, K[:2], 16, 16), "K"),
        (lambda: rasterize(V, F, torch.zeros(3, 3), 16, 16), "K"),
        (lambda: rasterize(V, F, K.expand(2, 3, 3), 16, 16), "K"),
        (lambda: rasterize(V, F, K, 0, 16), "height"),
        (lambda: rasterize(V, F, K, 16, 16.0), "width"),
        (lambda: rasterize(V, F, K, 16, 16, backend="opengl"), "backend"),
        (lambda: project(V[0, :, :2], K), "verts_cam"),
        (lambda: interpolate(torch.ones(2, 3), F, rasterize(V, F, K, 16, 16)), "faces"),
        (lambda: interpolate(torch.ones(4, 3, 3), F, rasterize(V, F, K, 16, 16)), "attr"),
        (lambda: interpolate(torch.ones(3, 3, dtype=torch.long), F, rasterize(V, F, K, 16, 16)), "attr"),
        (lambda: vertex_normals(V[..., :1], F), "verts"),
        (lambda: soft_silhouette(V, F, K, 16, 16, sigma=0.0), "sigma"),
        (lambda: soft_silhouette(V, F, K, 16, 16, face_labels=torch.tensor([2]), n_labels=2), "face_labels"),
        (lambda: soft_silhouette(V, F, K, 16, 16, face_labels=torch.tensor([0, 1]), n_labels=2), "face_labels"),
        (lambda: soft_silhouette(V, F, K, 16, 16, n_labels=3), "face_labels"),
        (lambda: soft_silhouette(V, F, K, 16, 16, face_labels=torch.tensor([0]), n_labels=0), "n_labels"),
        (lambda: soft_silhouette(V, F, K, 16, 16, depth_tolerance=-1.0), "depth_tolerance"),
        (lambda: soft_silhouette(V, F, K, 16, 16, depth_tolerance=0.1, hidden_label=1), "hidden_label"),
    ],
)
def test_bad_input_names_the_argument(call, arg):
    with pytest.raises(RenderInputError, match=f"`{arg}`") as info:
        call()
    assert isinstance(info.value, NhaBenchError) and "fix:" in str(info.value)


def test_everything_behind_the_camera_renders_background():
    fr = rasterize(V * torch.tensor([1.0, 1, -1]), F, K, 16, 16)
    assert not fr.mask.any() and (fr.depth == 0).all()
    assert (soft_silhouette(V * torch.tensor([1.0, 1, -1]), F, K, 16, 16) == 0).all()


def test_faces_changed_in_place_are_checked_again():
    f = F.clone()
    assert rasterize(V, f, K, 16, 16).mask.any()
    f[0, 2] = 7
    with pytest.raises(RenderInputError, match="`faces`"):
        rasterize(V, f, K, 16, 16)
