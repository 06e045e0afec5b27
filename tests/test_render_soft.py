"""Soft silhouettes: analytic values, convergence to the hard mask, labels and gradients."""

from __future__ import annotations

import math

import pytest
import torch

from nha_bench.render import RenderInputError, rasterize, soft_silhouette

K = torch.tensor([[10.0, 0, 0], [0, 10.0, 0], [0, 0, 1]], dtype=torch.float64)


def big_triangle(x_edge: float = 10.0):
    """A triangle at z = 1 whose right edge is the vertical line u = x_edge px, spanning the image."""
    x = x_edge / 10.0
    return torch.tensor([[x, -10.0, 1.0], [x, 10.0, 1.0], [-20.0, 0.0, 1.0]], dtype=torch.float64)


def test_value_matches_softras_formula_at_known_distances():
    verts = big_triangle(10.0)
    s = soft_silhouette(verts[None], torch.tensor([[0, 1, 2]]), K, 8, 16, sigma=1.0)[0, 4, :, 0]
    for col in range(16):
        d = col + 0.5 - 10.0  # signed distance of the pixel centre outside the edge
        expect = 1 / (1 + math.exp(d * d)) if d > 0 else 1 / (1 + math.exp(-d * d))
        if d * d < math.log(1e4):  # within the soft band; beyond it the value snaps to 0 / 1
            assert abs(float(s[col]) - expect) < 1e-9, col
        else:
            assert abs(float(s[col]) - expect) < 2e-4, col


def sphere(sub: int = 3):
    import trimesh

    m = trimesh.creation.icosphere(subdivisions=sub)
    v = torch.tensor(m.vertices) * torch.tensor([0.8, 1.0, 0.9]) + torch.tensor([0.0, 0.0, 3.0])
    Ks = torch.tensor([[60.0, 0, 24], [0, 60.0, 24], [0, 0, 1]], dtype=torch.float64)
    return v, torch.tensor(m.faces), Ks


def test_converges_to_hard_mask_as_sigma_shrinks():
    v, f, Ks = sphere()
    hard = rasterize(v[None], f, Ks, 48, 48).mask[0].double()
    diffs = [(soft_silhouette(v[None], f, Ks, 48, 48, sigma=s)[0, ..., 0] - hard).abs() for s in (2.0, 1.0, 0.3, 0.03, 0.003)]
    errs = [float(d.mean()) for d in diffs]
    assert all(a > b for a, b in zip(errs, errs[1:])), errs
    # at sigma = 0.03 px only pixel centres within ~0.1 px of the outline still differ
    assert (diffs[-2] > 0.5).sum() < 20 and errs[-1] < 1e-9


def test_labels_split_coverage():
    v, f, Ks = sphere(2)
    labels = (v[f].mean(1)[:, 0] > 0).long()  # right half label 1
    s = soft_silhouette(v[None], f, Ks, 48, 48, sigma=0.05, face_labels=labels, n_labels=2)[0]
    fr = rasterize(v[None], f, Ks, 48, 48)
    assert s[:, :20, 1].max() < 1e-3 and s[:, 28:, 0].max() < 1e-3
    union = torch.maximum(s[..., 0], s[..., 1])
    assert (union - fr.mask[0].double()).abs().mean() < 1e-2


def test_gradients_nonzero_at_edges_and_match_finite_differences():
    verts = big_triangle(10.0).requires_grad_()
    f = torch.tensor([[0, 1, 2]])
    s = soft_silhouette(verts[None], f, K, 8, 16, sigma=1.0)
    s.sum().backward()
    # moving the right edge right grows coverage: d/dx of both edge vertices is positive
    assert verts.grad[0, 0] > 0 and verts.grad[1, 0] > 0
    v0 = big_triangle(10.3)  # edge off the pixel centres, so the hard band is stable under FD steps
    fn = lambda v: soft_silhouette(v[None], f, K, 8, 16, sigma=1.5)
    assert torch.autograd.gradcheck(fn, (v0.requires_grad_(),), eps=1e-6, atol=1e-6, fast_mode=True)


def test_gradcheck_on_closed_mesh_with_labels():
    import trimesh

    m = trimesh.creation.icosphere(subdivisions=1)
    v = (torch.tensor(m.vertices) * torch.tensor([0.9, 1.0, 0.8]) + torch.tensor([0.05, -0.03, 3.0])).requires_grad_()
    f = torch.tensor(m.faces)
    labels = (torch.tensor(m.vertices)[f].mean(1)[:, 1] > 0.2).long()
    Ks = torch.tensor([[22.0, 0, 10.3], [0, 22.0, 9.7], [0, 0, 1]], dtype=torch.float64)
    fn = lambda x: soft_silhouette(x[None], f, Ks, 20, 20, sigma=1.5, face_labels=labels, n_labels=2)
    out = fn(v)
    assert (out > 0.01).sum() > 100 and (out[..., 1] > 0.5).any()
    assert torch.autograd.gradcheck(fn, (v,), eps=1e-6, atol=1e-6, fast_mode=True)


def test_faces_beyond_the_bottom_right_edge_are_ignored():
    """A head partly out of the image: boxes of faces past the edge start at W + 1 / H + 1 and
    must not index outside the band's summed-area table (a CUDA device assert on the GPU)."""
    v, f, Ks = sphere(2)
    inside = soft_silhouette(v[None], f, Ks, 48, 48, sigma=1.0, n_labels=1)
    shifted = v + torch.tensor([1.2, 1.2, 0.0])  # most faces far past the bottom-right corner
    for labels, n in ((None, 1), ((v[f].mean(1)[:, 0] > 0).long(), 2)):
        s = soft_silhouette(shifted[None], f, Ks, 48, 48, sigma=1.0, face_labels=labels, n_labels=n)
        assert s.shape == (1, 48, 48, n) and torch.isfinite(s).all()
        assert s.sum() < inside.sum()  # only the part left of / above the corner is covered


def two_spheres():
    """A small sphere (label 1) half hidden behind a big one (label 0) at 40x40 px: (vertices, faces,
    face labels, K, the front sphere's face count)."""
    import trimesh

    fine, coarse = trimesh.creation.icosphere(subdivisions=4), trimesh.creation.icosphere(subdivisions=2)
    front = torch.tensor(fine.vertices) * 0.5 + torch.tensor([0.0, 0.0, 3.0])  # faces of about a pixel, as the head's at 256^2
    back = torch.tensor(coarse.vertices) * 0.4 + torch.tensor([0.45, 0.0, 4.0])
    faces = torch.cat([torch.tensor(fine.faces), torch.tensor(coarse.faces) + len(front)])
    labels = torch.cat([torch.zeros(len(fine.faces)), torch.ones(len(coarse.faces))]).long()
    K = torch.tensor([[80.0, 0, 20.3], [0, 80.0, 19.7], [0, 0, 1]], dtype=torch.float64)
    return torch.cat([front, back]), faces, labels, K, len(fine.faces)


def test_depth_tolerance_hides_a_label_behind_another_but_keeps_the_outline():
    """A small sphere (label 1) behind a big one (label 0): without a tolerance label 1 shows through;
    with one it counts only where it is the near surface, and its hidden part goes to the hidden label
    (2), so the union over labels is unchanged. Gradients match finite differences."""
    v, faces, labels, Ks, n_front = two_spheres()
    hidden_label = 2
    fn = lambda x, tol: soft_silhouette(  # noqa: E731
        x[None], faces, Ks, 40, 40, sigma=1.0, face_labels=labels, n_labels=3, cull_backfaces=True, depth_tolerance=tol,
        hidden_label=hidden_label,
    )[0]
    every, seen, far = fn(v, math.inf), fn(v, 0.05), fn(v, 10.0)
    covered_by_front = rasterize(v[None], faces[:n_front], Ks, 40, 40).mask[0]
    inner = torch.nn.functional.max_pool2d(-covered_by_front[None].float(), 7, 1, 3)[0] == -1  # 3 px inside
    assert every[..., 1][inner].sum() > 20  # the back sphere shows through the front one
    assert seen[..., 1][inner].max() < 1e-3
    assert (seen[..., 0] - every[..., 0]).abs().max() < 0.1  # a rim face may be hidden by a more frontal neighbour
    assert (far - every).abs().max() < 1e-3, float((far - every).abs().max())
    assert every[..., hidden_label].max() == 0 and seen[..., hidden_label][inner].sum() > 20
    union = lambda s: 1 - torch.prod(1 - s, -1)  # noqa: E731
    assert (union(seen) - union(every)).abs().max() < 1e-2  # hard / soft substitution at band edges
    x = v.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda y: fn(y, 0.05), (x,), eps=1e-6, atol=1e-6, fast_mode=True)


def test_depth_exempt_labels_skip_the_depth_test():
    """Exempting the back sphere's label (1) from the depth test shows it through the front one again,
    as without a tolerance, while the front sphere's label keeps the test; a label outside
    [0, n_labels) is refused."""
    v, faces, labels, Ks, _ = two_spheres()
    fn = lambda tol, exempt: soft_silhouette(  # noqa: E731
        torch.stack([v, v]), faces, Ks, 40, 40, sigma=1.0, face_labels=labels, n_labels=3, cull_backfaces=True,
        depth_tolerance=tol, hidden_label=2, depth_exempt_labels=exempt,
    )[1]  # the second of a batch: the faces' labels line up with every batch item
    every, seen, exempt_back = fn(math.inf, ()), fn(0.05, ()), fn(0.05, (1,))
    assert (exempt_back[..., 1] - every[..., 1]).abs().max() < 1e-6
    assert (exempt_back[..., 0] - seen[..., 0]).abs().max() < 1e-6
    assert exempt_back[..., 2].sum() < 0.1 * seen[..., 2].sum()  # only the front sphere's rim faces stay hidden
    with pytest.raises(RenderInputError, match="depth_exempt_labels"):
        fn(0.05, (3,))


def test_without_a_hidden_label_hidden_faces_count_for_nothing():
    """With a depth tolerance and no hidden label, a face behind the front surface counts for no label:
    the other labels' values and gradients are those with a hidden label, and nothing else is drawn."""
    v, faces, labels, Ks, _ = two_spheres()
    outs, grads = {}, {}
    for hidden in (2, None):
        x = v.clone().requires_grad_()
        soft = soft_silhouette(
            x[None], faces, Ks, 40, 40, sigma=1.0, face_labels=labels, n_labels=3, cull_backfaces=True,
            depth_tolerance=0.05, hidden_label=hidden,
        )[0]
        (soft[..., :2] * torch.tensor([1.0, 2.0], dtype=soft.dtype)).sum().backward()
        outs[hidden], grads[hidden] = soft.detach(), x.grad
    assert outs[2][..., 2].sum() > 20 and outs[None][..., 2].max() == 0
    torch.testing.assert_close(outs[None][..., :2], outs[2][..., :2])
    torch.testing.assert_close(grads[None], grads[2])
