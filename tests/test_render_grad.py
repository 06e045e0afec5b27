"""Gradients of the rasterizer, interpolation and normals against finite differences (float64)."""

from __future__ import annotations

import numpy as np
import torch

from nha_bench.render import interpolate, rasterize, vertex_normals


def bumpy_grid(n: int = 4, seed: int = 0):
    """A non-overlapping height-field mesh in front of the camera (no depth ties)."""
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, n), torch.linspace(-1, 1, n), indexing="ij")
    z = 3.0 + 0.3 * torch.rand(n, n, generator=g)
    verts = torch.stack([xs, ys, z], -1).reshape(-1, 3).double()
    idx = torch.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, 1:], idx[1:, :-1]
    faces = torch.cat([torch.stack([a, b, c], -1), torch.stack([a, c, d], -1)]).reshape(-1, 3)
    K = torch.tensor([[18.0, 0, 7.1], [0, 18.0, 6.9], [0, 0, 1]], dtype=torch.float64)
    return verts, faces, K


H, W = 14, 14


def interior_mask(verts, faces, K):
    """Foreground pixels whose centre is > 1e-3 inside its face, so FD steps cannot change the face."""
    fr = rasterize(verts[None], faces, K, H, W)
    m = fr.mask & (fr.bary.min(-1).values > 1e-3)
    assert m.sum() > 40
    return m


def test_depth_and_bary_gradcheck_wrt_vertices():
    verts, faces, K = bumpy_grid()
    m = interior_mask(verts, faces, K)

    def f(v):
        fr = rasterize(v[None], faces, K, H, W)
        return fr.depth[m], fr.bary[m]

    assert torch.autograd.gradcheck(f, (verts.clone().requires_grad_(),), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_interpolate_gradcheck_wrt_attributes_and_vertices():
    verts, faces, K = bumpy_grid(seed=1)
    m = interior_mask(verts, faces, K)
    attr = torch.rand(len(verts), 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))

    def f(v, a):
        return interpolate(a, faces, rasterize(v[None], faces, K, H, W))[m]

    assert torch.autograd.gradcheck(f, (verts.clone().requires_grad_(), attr.requires_grad_()), eps=1e-6, atol=1e-6)


def test_batched_attributes_and_gradients_reach_only_visible_vertices():
    verts, faces, K = bumpy_grid(n=5)
    v = torch.stack([verts, verts + torch.tensor([5.0, 0, 0], dtype=torch.float64)]).requires_grad_()
    fr = rasterize(v, faces, K, H, W)
    assert fr.mask[0].any() and not fr.mask[1].any()  # second copy is out of view
    interpolate(v, faces, fr).sum().backward()
    assert v.grad[0].abs().sum() > 0 and v.grad[1].abs().sum() == 0


def test_vertex_normals_match_loop_reference_and_sphere():
    import trimesh

    m = trimesh.creation.icosphere(subdivisions=2)
    v = torch.tensor(m.vertices)
    f = torch.tensor(m.faces)
    ref = np.zeros_like(m.vertices)
    for a, b, c in m.faces:  # area-weighted: the cross product's length is twice the area
        n = np.cross(m.vertices[b] - m.vertices[a], m.vertices[c] - m.vertices[a])
        ref[[a, b, c]] += n
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    got = vertex_normals(v, f)
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-12)
    np.testing.assert_allclose(got.numpy(), m.vertices / np.linalg.norm(m.vertices, axis=1, keepdims=True), atol=5e-2)
    batched = vertex_normals(torch.stack([v, 2 * v]), f)
    torch.testing.assert_close(batched[1], got)
    ico = trimesh.creation.icosphere(subdivisions=0)
    small = torch.tensor(ico.vertices).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: vertex_normals(x, torch.tensor(ico.faces)), (small,), eps=1e-6, atol=1e-6)


def test_vertex_at_camera_centre_keeps_gradients_finite():
    verts, faces, K = bumpy_grid(n=4)
    extra = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    v = torch.cat([verts, extra]).requires_grad_()
    f = torch.cat([faces, torch.tensor([[16, 17, 18]])])
    fr = rasterize(v[None], f, K, H, W)
    (interpolate(v, f, fr).sum() + fr.depth.sum()).backward()
    assert torch.isfinite(v.grad).all() and v.grad[:16].abs().sum() > 0
