"""CUDA path: the Triton visibility kernel against the PyTorch path and the brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nha_bench.render import interpolate, rasterize, soft_silhouette



def needs_cuda(test):
    """Mark a test as GPU-only: skipped without CUDA."""
    return pytest.mark.gpu(pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")(test))


@needs_cuda
@pytest.mark.parametrize("seed", range(4))
def test_triton_matches_torch_and_brute_force(seed):
    from test_render_raster import brute_force, random_scene

    verts, faces, K, H, W = *random_scene(seed, n_faces=40), 37, 53  # not a multiple of the tile size
    ref_face, ref_depth, _, robust, _ = brute_force(verts, faces, K, H, W)
    args = (torch.tensor(verts, device="cuda")[None], torch.tensor(faces, device="cuda"), torch.tensor(K, device="cuda"), H, W)
    tri = rasterize(*args, backend="triton")
    pt = rasterize(*args, backend="torch")
    assert torch.equal(tri.face_idx, pt.face_idx)
    face = tri.face_idx[0].cpu().numpy()
    assert (face[robust] == ref_face[robust]).all()
    same = (face == ref_face) & (face >= 0)
    np.testing.assert_allclose(tri.depth[0].cpu().numpy()[same], ref_depth[same], rtol=1e-6)


@needs_cuda
def test_triton_matches_torch_on_dense_mesh_with_large_triangles():
    import trimesh

    m = trimesh.creation.icosphere(subdivisions=5)
    v = torch.tensor(m.vertices, dtype=torch.float32, device="cuda")
    f = torch.tensor(m.faces, device="cuda")
    verts = torch.stack([v + torch.tensor([0.0, 0, 3], device="cuda"), 0.3 * v + torch.tensor([0.2, 0.1, 2], device="cuda")])
    K = torch.tensor([[300.0, 0, 250], [0, 300.0, 260], [0, 0, 1]], device="cuda")
    big = torch.tensor([[-3.0, -3, 4], [3, -3, 4], [0, 3, 2.5]], device="cuda")  # covers many tiles, behind/in front
    verts = torch.cat([verts, big.expand(2, 3, 3)], 1)
    f = torch.cat([f, torch.tensor([[0, 1, 2]], device="cuda") + v.shape[0]])
    a = rasterize(verts, f, K, 500, 520, backend="torch")
    b = rasterize(verts, f, K, 500, 520, backend="triton")
    assert a.mask.float().mean() > 0.3
    assert (a.face_idx == b.face_idx).float().mean() > 0.9999
    both = (a.face_idx == b.face_idx) & a.mask
    torch.testing.assert_close(a.depth[both], b.depth[both])


@needs_cuda
def test_cuda_gradients_match_cpu():
    from test_render_grad import H, W, bumpy_grid

    verts, faces, K = bumpy_grid(n=5, seed=3)
    attr = torch.rand(len(verts), 3, dtype=torch.float64)
    grads = []
    for dev in ("cpu", "cuda"):
        v = verts.detach().to(dev).requires_grad_()
        fr = rasterize(v[None], faces.to(dev), K.to(dev), H, W)
        loss = interpolate(attr.to(dev), faces.to(dev), fr).square().sum() + fr.depth.sum()
        loss = loss + soft_silhouette(v[None], faces.to(dev), K.to(dev), H, W, sigma=0.7).sum()
        loss.backward()
        grads.append(v.grad.cpu())
    assert grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[1], grads[0])


@needs_cuda
@pytest.mark.parametrize("exempt", [(), (0,)])
def test_cuda_soft_labels_with_depth_test_match_cpu(exempt):
    """The per-label soft silhouette with the per-face depth test and a hidden label, with and without
    a label exempt from the test: values and gradients on CUDA equal the CPU's."""
    from test_render_soft import two_spheres

    verts, faces, labels, K, _ = two_spheres()
    outs, grads = [], []
    for dev in ("cpu", "cuda"):
        v = verts.detach().to(dev).requires_grad_()
        soft = soft_silhouette(
            v[None], faces.to(dev), K.to(dev), 40, 40, sigma=1.0, face_labels=labels.to(dev), n_labels=3,
            cull_backfaces=True, depth_tolerance=0.05, hidden_label=2, depth_exempt_labels=exempt,
        )
        (soft * torch.arange(1, 4, device=dev)).sum().backward()
        outs.append(soft.detach().cpu())
        grads.append(v.grad.cpu())
    assert outs[0][..., 2].sum() > 20 and grads[0].abs().sum() > 0  # the hidden label is in play
    torch.testing.assert_close(outs[1], outs[0])
    torch.testing.assert_close(grads[1], grads[0])


@needs_cuda
def test_auto_backend_picks_triton_on_cuda():
    from nha_bench.render.raster_triton import triton_available

    assert triton_available()


INTERPRETER_CHECK = """
import sys, torch
sys.path.insert(0, "tests")
from test_render_raster import random_scene
from nha_bench.render.raster_torch import visibility_torch
from nha_bench.render.raster_triton import visibility_triton
from nha_bench.render.setup import setup_faces
for seed in range(3):
    v, f, K = random_scene(seed, n_faces=30)
    s = setup_faces(torch.tensor(v)[None], torch.tensor(f), torch.tensor(K)[None], 37, 53, 1e-3, False)
    assert torch.equal(visibility_torch(s, 37, 53), visibility_triton(s, 37, 53)), seed
print("ok")
"""


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present: the real kernel is tested above")
def test_triton_kernel_in_interpreter_matches_torch_on_cpu():
    """Without a GPU, run the Triton kernel in Triton's CPU interpreter (needs the triton package)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("triton")
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(root))
    out = subprocess.run([sys.executable, "-c", INTERPRETER_CHECK], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
