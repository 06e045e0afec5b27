"""SoftRas-style soft silhouettes per face label, differentiable w.r.t. vertices.

Coverage of label k at pixel q: 1 - prod_{faces j with label k} (1 - sigmoid(+-d_j(q)^2 / sigma^2)),
with d_j the 2D distance (pixels) from the pixel centre to triangle j, + inside and - outside
(Liu et al., Soft Rasterizer, 2019, with sigma as a length in pixels instead of NDC^2). Occlusion
is ignored, as in SoftRas silhouettes, unless a ``depth_tolerance`` is given: then a face counts for
its label only if, at its centroid, it lies at most that far behind the front surface (always, where
the centroid is off the coverage), and otherwise for ``hidden_label``, if given, so that the union
over all labels stays the occlusion-free silhouette (a depth test written here because pytorch3d's
z-aware blending is not installable); faces of ``depth_exempt_labels`` skip the test. Faces further than
r = sigma * sqrt(ln((1-eps)/eps)) from a pixel contribute less than eps and are skipped; pixels
further than r from every label boundary of the hard coverage are set to that hard value (0 or 1)
and carry no gradient.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as Fn

from nha_bench.render.camera import project_unchecked
from nha_bench.render.checks import RenderInputError, check_faces, check_K, check_size, check_verts
from nha_bench.render.rasterize import DEFAULT_ZNEAR, visibility
from nha_bench.render.raster_torch import CANDIDATE_BUDGET, candidate_keys
from nha_bench.render.setup import enumerate_pixels, setup_faces

# (face, pixel) candidates per chunk; each holds a few dozen floats while evaluated
SOFT_BUDGET = {"cpu": 1 << 20, "cuda": 1 << 23}


def _closest(tri: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor):
    """Closest edge of triangles tri (N, 3, 2) to points q: squared distance d2 (N,), edge k (N,),
    its parameter t (N,), q - closest point r (N, 2), and whether q is inside (N,)."""
    e = tri.roll(-1, 1) - tri  # edge i: p_i -> p_{i+1}
    qa = torch.stack([qx, qy], -1)[:, None, :] - tri
    t = ((qa * e).sum(-1) / (e * e).sum(-1).clamp(min=1e-12)).clamp(0.0, 1.0)
    r = qa - t[..., None] * e
    d2, k = r.square().sum(-1).min(1)
    cross = e[..., 0] * qa[..., 1] - e[..., 1] * qa[..., 0]
    area = e[:, 0, 0] * e[:, 1, 1] - e[:, 0, 1] * e[:, 1, 0]
    inside = (cross * area[:, None] >= 0).all(1)
    t_k = t.gather(1, k[:, None]).squeeze(1)
    r_k = r.gather(1, k[:, None, None].expand(-1, 1, 2)).squeeze(1)
    return d2, k, t_k, r_k, inside


class _SoftAggregate(torch.autograd.Function):
    """sum_j log(1 - D_j) per (pixel, label) from screen-space vertices uv (B, V, 2).

    Written as a Function with a hand-derived backward that recomputes each chunk of (face, pixel)
    candidates, so memory stays bounded by one chunk instead of every candidate's autograd graph.
    d(d^2)/d(a) = -2 (1 - t) (q - c) and d(d^2)/d(b) = -2 t (q - c) for the closest edge a -> b,
    closest point c = a + t (b - a) (envelope theorem; also right where t is clamped).
    """

    @staticmethod
    def forward(ctx, uv, faces, labels, band, bbox, seen, hidden, sigma, width, hw, n_labels):
        ctx.save_for_backward(uv, faces, labels, band, bbox, seen)
        ctx.args = (hidden, sigma, width, hw, n_labels)
        acc = uv.new_zeros(band.shape[0])
        for face, x, y, idx, tri in _band_candidates(uv, faces, labels, band, bbox, seen, hidden, width, hw, n_labels):
            d2, _, _, _, inside = _closest(tri, x.to(tri.dtype) + 0.5, y.to(tri.dtype) + 0.5)
            acc.index_add_(0, idx, Fn.logsigmoid(-torch.where(inside, d2, -d2) / sigma**2))
        return acc

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_acc):
        uv, faces, labels, band, bbox, seen = ctx.saved_tensors
        hidden, sigma, width, hw, n_labels = ctx.args
        B, V, F = uv.shape[0], uv.shape[1], faces.shape[0]
        grad = torch.zeros_like(uv).view(B * V, 2)
        for face, x, y, idx, tri in _band_candidates(uv, faces, labels, band, bbox, seen, hidden, width, hw, n_labels):
            d2, k, t, r, inside = _closest(tri, x.to(tri.dtype) + 0.5, y.to(tri.dtype) + 0.5)
            sgn = torch.where(inside, 1.0, -1.0).to(uv.dtype)
            # d/ds logsigmoid(-s / sigma^2) = -sigmoid(s / sigma^2) / sigma^2, with s = sgn * d2
            w = grad_acc[idx] * torch.sigmoid(sgn * d2 / sigma**2) * (-1.0 / sigma**2) * sgn * -2.0
            b = torch.div(face, F, rounding_mode="floor")
            vid = faces[face - b * F]  # (N, 3)
            va = vid.gather(1, k[:, None]).squeeze(1)
            vb = vid.gather(1, torch.remainder(k + 1, 3)[:, None]).squeeze(1)
            grad.index_add_(0, b * V + va, (w * (1 - t))[:, None] * r)
            grad.index_add_(0, b * V + vb, (w * t)[:, None] * r)
        return grad.view(B, V, 2), *([None] * 10)


def _band_candidates(uv, faces, labels, band, bbox, seen, hidden: int | None, width: int, hw: int, n_labels: int):
    """Yield (face, x, y, flat (pixel, label) index, triangle uv (N, 3, 2)) for candidates in the band.
    With ``seen`` (``_seen_faces``), a face not seen counts for label ``hidden``."""
    B, F = uv.shape[0], faces.shape[0]
    per_face = uv.index_select(1, faces.reshape(-1)).view(B * F, 6)
    for face, y, x in enumerate_pixels(bbox, SOFT_BUDGET.get(uv.device.type, 1 << 20)):
        b = torch.div(face, F, rounding_mode="floor")
        idx = _label_index(b * hw + y * width + x, labels[face - b * F], face, seen, hidden, n_labels)
        keep = torch.nonzero(band[idx]).squeeze(1)
        face = face[keep]
        yield face, x[keep], y[keep], idx[keep], per_face.index_select(0, face).view(-1, 3, 2)


def _label_index(pix, face_label, face, seen, hidden: int | None, n_labels: int):
    """Flat (pixel, label) index of candidates; with ``seen`` (``_seen_faces``) a face not seen
    counts for label ``hidden``."""
    idx = pix * n_labels + face_label
    return idx if seen is None else torch.where(seen[face], idx, pix * n_labels + hidden)


def _empty_boxes(bbox: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """The boxes (B*F, 4) with those of faces not in ``keep`` (B*F,) made empty."""
    return torch.where(keep[:, None], bbox, torch.tensor([0, 0, -1, -1], device=bbox.device))


def _boundary_band(img: torch.Tensor, k: int) -> torch.Tensor:
    """Pixels within k // 2 of a boundary of each channel of a (B, C, H, W) 0/1 image."""
    return _box_max(img, k) > -_box_max(-img, k)


def _seen_faces(setup, uv: torch.Tensor, faces: torch.Tensor, height: int, width: int, tolerance: float) -> torch.Tensor:
    """(B * F,) whether each face is seen: at its centroid it lies at most ``tolerance`` behind the
    front surface, whose depth there is taken as its depth at the centre of the centroid's pixel plus
    its depth slope times the distance (a steep visible surface near an outline then still compares
    equal with itself); a face whose centroid is off the coverage or the image is seen. One test per
    face, not per (face, pixel): the subdivided head's faces are smaller than a pixel at 256^2."""
    limit, slope = _front_surface(setup, height, width, tolerance)
    c = setup.coef
    centroid = uv.detach().to(c.dtype).index_select(1, faces.reshape(-1))
    centroid = centroid.view(setup.batch, -1, 3, 2).mean(2).reshape(-1, 2)  # (B * F, 2)
    inv_z = _inv_depth(c, centroid[:, 0], centroid[:, 1])
    inside = (centroid[:, 0] >= 0) & (centroid[:, 0] < width) & (centroid[:, 1] >= 0) & (centroid[:, 1] < height)
    px = centroid[:, 0].floor().clamp(0, width - 1)
    py = centroid[:, 1].floor().clamp(0, height - 1)
    batch = torch.arange(setup.batch, device=c.device).repeat_interleave(setup.n_faces)
    pixel = batch * (height * width) + py.long() * width + px.long()
    reach = limit[pixel] + slope[pixel] * (centroid - torch.stack([px, py], -1) - 0.5).norm(dim=-1)
    return ~inside | torch.isinf(reach) | ((inv_z > 0) & (inv_z * reach >= 1.0))


def _prune_to_band(bbox: torch.Tensor, band_img: torch.Tensor, labels: torch.Tensor, hidden: int | None) -> torch.Tensor:
    """Empty the boxes (B*F, 4) of faces whose box holds no band pixel of their label (nor of label
    ``hidden``, if given).

    Uses a summed-area table of the band, so interior faces are never enumerated.
    """
    B, L, H, W = band_img.shape
    F = labels.shape[0]
    table = torch.zeros(B, L, H + 1, W + 1, dtype=torch.int32, device=bbox.device)
    table[:, :, 1:, 1:] = band_img.int().cumsum(2).cumsum(3)
    flat = table.view(-1)
    batch = torch.arange(B, device=bbox.device).repeat_interleave(F) * L
    # boxes of faces beyond the right/bottom edge start at W + 1 / H + 1 (empty): keep lookups inside
    x0, y0 = bbox[:, 0].clamp(max=W), bbox[:, 1].clamp(max=H)
    x1, y1 = (bbox[:, 2] + 1).clamp(min=0), (bbox[:, 3] + 1).clamp(min=0)

    def count(label: torch.Tensor) -> torch.Tensor:
        base = (batch + label) * ((H + 1) * (W + 1))
        at = lambda y, x: flat[base + y * (W + 1) + x]  # noqa: E731
        return at(y1, x1) - at(y0, x1) - at(y1, x0) + at(y0, x0)

    count = count(labels.repeat(B)) + (count(torch.full_like(batch, hidden)) if hidden is not None else 0)
    return _empty_boxes(bbox, (count > 0) & (bbox[:, 2] >= bbox[:, 0]))


def _box_max(img: torch.Tensor, k: int) -> torch.Tensor:
    """k x k max filter (stride 1, same size) as two 1D passes: cheaper than one 2D max_pool."""
    img = Fn.max_pool2d(img, (k, 1), stride=1, padding=(k // 2, 0))
    return Fn.max_pool2d(img, (1, k), stride=1, padding=(0, k // 2))


def _front_surface(setup, height: int, width: int, tolerance: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per pixel (flat, B * H * W): the nearest face's depth at the pixel centre plus ``tolerance``
    (inf off the coverage), and that face's depth change per pixel, z^2 |grad(1/z)| (the
    rasterizer's visibility search: Triton on CUDA)."""
    face = visibility(setup, height, width, "auto")
    batch = torch.arange(setup.batch, device=face.device)[:, None, None] * setup.n_faces
    c = setup.coef[(face + batch).clamp_min(0)]
    y, x = torch.meshgrid(torch.arange(height, device=face.device), torch.arange(width, device=face.device), indexing="ij")
    z = 1.0 / _inv_depth(c, x + 0.5, y + 0.5).clamp_min(1e-12)
    covered = face >= 0
    limit = torch.where(covered, z + tolerance, math.inf)
    slope = torch.where(covered, z.square() * torch.hypot(c[..., 9], c[..., 10]), 0.0)
    return limit.reshape(-1), slope.reshape(-1)


def _inv_depth(coef: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """1/z of faces (setup coefficients (..., 16)) at screen points (x, y): affine in pixels."""
    return coef[..., 9] * x + coef[..., 10] * y + coef[..., 11]


def _check_labels(face_labels, n_faces: int, n_labels: int, device) -> torch.Tensor:
    if not isinstance(n_labels, int) or n_labels < 1:
        raise RenderInputError(f"renderer argument `n_labels`: expected an int >= 1, got {n_labels!r}", fix="pass the number of labels")
    if face_labels is None:
        if n_labels != 1:
            raise RenderInputError("renderer argument `face_labels`: required when n_labels > 1", fix="pass one label per face")
        return torch.zeros(n_faces, dtype=torch.long, device=device)
    if not isinstance(face_labels, torch.Tensor) or face_labels.shape != (n_faces,) or face_labels.is_floating_point():
        shape = tuple(face_labels.shape) if isinstance(face_labels, torch.Tensor) else type(face_labels).__name__
        raise RenderInputError(
            f"renderer argument `face_labels`: expected an integer tensor of shape ({n_faces},), got {shape}",
            fix="pass one label per face of `faces`",
        )
    face_labels = face_labels.to(device=device, dtype=torch.long)
    if int(face_labels.min()) < 0 or int(face_labels.max()) >= n_labels:
        raise RenderInputError(
            f"renderer argument `face_labels`: values must lie in [0, {n_labels}), got [{int(face_labels.min())}, {int(face_labels.max())}]",
            fix="raise `n_labels` or remap the labels",
        )
    return face_labels


def soft_silhouette(
    verts_cam: torch.Tensor,
    faces: torch.Tensor,
    K: torch.Tensor,
    height: int,
    width: int,
    sigma: float = 1.0,
    face_labels: torch.Tensor | None = None,
    n_labels: int = 1,
    znear: float = DEFAULT_ZNEAR,
    cull_backfaces: bool = False,
    eps: float = 1e-4,
    depth_tolerance: float = math.inf,
    hidden_label: int | None = None,
    depth_exempt_labels: tuple[int, ...] = (),
) -> torch.Tensor:
    """Soft per-label coverage (B, H, W, n_labels) in [0, 1]; ``sigma`` is the edge width in pixels.

    As sigma -> 0 it tends to the hard per-label mask. ``depth_tolerance`` (camera units, e.g. metres):
    a face counts for its label only if its centroid lies at most this far behind the front surface
    (inf: occlusion ignored), else for ``hidden_label`` (None: not at all); faces labelled one of
    ``depth_exempt_labels`` always count for their label. Same camera convention and near-plane rule
    as :func:`rasterize`.
    """
    verts_cam = check_verts(verts_cam, finite=False)
    faces = check_faces(faces, verts_cam.shape[1], verts_cam.device)
    K = check_K(K, verts_cam.shape[0], verts_cam, verts_arg="verts_cam")
    check_size(height, width)
    if not isinstance(sigma, (int, float)) or not sigma > 0:
        raise RenderInputError(f"renderer argument `sigma`: expected a positive number of pixels, got {sigma!r}", fix="pass e.g. sigma=1.0")
    if not isinstance(depth_tolerance, (int, float)) or not depth_tolerance >= 0:
        raise RenderInputError(
            f"renderer argument `depth_tolerance`: expected a number >= 0 or inf, got {depth_tolerance!r}",
            fix="pass e.g. depth_tolerance=0.002 (2 mm behind the visible surface) or leave it out",
        )
    labels = _check_labels(face_labels, faces.shape[0], n_labels, verts_cam.device)
    if hidden_label is not None and (not isinstance(hidden_label, int) or not 0 <= hidden_label < n_labels):
        raise RenderInputError(
            f"renderer argument `hidden_label`: expected None or a label in [0, {n_labels}), got {hidden_label!r}",
            fix="raise `n_labels` to make room for a label of the hidden surfaces",
        )
    if not all(isinstance(k, int) and 0 <= k < n_labels for k in depth_exempt_labels):
        raise RenderInputError(
            f"renderer argument `depth_exempt_labels`: expected labels in [0, {n_labels}), got {depth_exempt_labels!r}",
            fix="pass the labels whose faces skip the depth test, or leave it out",
        )
    B, F, L, HW = verts_cam.shape[0], faces.shape[0], n_labels, height * width
    radius = sigma * math.sqrt(math.log((1 - eps) / eps))
    dev = verts_cam.device

    # 1) hard per-label coverage, and the band of pixels within `radius` of a label boundary
    hard = torch.zeros(B * HW * L, dtype=torch.bool, device=dev)
    setup = setup_faces(verts_cam, faces, K, height, width, znear, cull_backfaces)
    uv = project_unchecked(verts_cam, K)
    seen = None if math.isinf(depth_tolerance) else _seen_faces(setup, uv, faces, height, width, depth_tolerance)
    if seen is not None and depth_exempt_labels:
        exempt = torch.zeros(L, dtype=torch.bool, device=dev)
        exempt[list(depth_exempt_labels)] = True
        seen = seen | exempt[labels].repeat(B)
    counted = None  # which faces count for a label, where some do not
    if seen is not None and hidden_label is None:
        # a face not seen counts for no label: both passes leave it out, and the rest count as seen
        counted, seen = seen, None
    boxes = setup.bbox if counted is None else _empty_boxes(setup.bbox, counted)
    for face, y, x in enumerate_pixels(boxes, CANDIDATE_BUDGET):
        inside, _ = candidate_keys(setup.coef, face, y, x, F)
        pix = torch.div(face, F, rounding_mode="floor") * HW + y * width + x
        idx = _label_index(pix, labels[face % F], face, seen, hidden_label, L)
        hard.index_fill_(0, idx[inside], True)
    img = hard.view(B, height, width, L).permute(0, 3, 1, 2).float()
    k = 2 * math.ceil(radius) + 1
    band_img = _boundary_band(img, k)  # (B, L, H, W)
    if seen is not None:  # (so there is a hidden label)
        # the hidden label is soft along the outline only, so that there the union over labels keeps
        # every face (inside the coverage the union is 1 anyway)
        band_img[:, hidden_label] = _boundary_band(img.amax(1, keepdim=True), k)[:, 0]
    band = band_img.permute(0, 2, 3, 1).reshape(-1)

    # 2) SoftRas aggregation over faces near band pixels, in log space: sum log(1 - D_j)
    wide = setup_faces(verts_cam, faces, K, height, width, znear, cull_backfaces, expand=radius)
    bbox = _prune_to_band(wide.bbox, band_img, labels, None if seen is None else hidden_label)
    if counted is not None:
        bbox = _empty_boxes(bbox, counted)
    acc = _SoftAggregate.apply(uv, faces, labels, band, bbox, seen, hidden_label, float(sigma), width, HW, L)
    soft = 1.0 - torch.exp(acc)
    out = torch.where(band, soft, hard.to(soft.dtype))
    return out.view(B, height, width, L)
