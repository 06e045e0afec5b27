"""The NHA avatar: edited head model + offset MLP G (geometry) and normal encoder + texture MLP T.

Frames: the head model works in metres (y up, z to the viewer); everything rendered is in the
dataset's OpenCV camera frame via ``nha_bench.tracking.camera.model_to_camera``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from nha_bench.errors import NhaBenchError
from nha_bench.head.base import HeadModel, HeadParams
from nha_bench.head.lbs import axis_angle_to_matrix
from nha_bench.head.regions import pinna_mask
from nha_bench.methods.nha.config import NhaConfig
from nha_bench.methods.nha.losses import unique_edges
from nha_bench.methods.nha.networks import NormalPatchEncoder, OffsetMLP, TextureMLP
from nha_bench.render import interpolate, project, rasterize, soft_silhouette, vertex_normals
from nha_bench.tracking.camera import model_to_camera

# semantic classes of mesh faces (soft-silhouette labels) and the parsing label each matches; the
# paper's E_semantic uses the first N_SEMANTIC_XOR (skin+neck, eyes, ears, hair). The mouth, ICT's
# band round the ear (with ``semantic_ear_region="pinna"``) and, with a finite
# ``semantic_depth_tolerance_mm``, the surfaces hidden behind others only enter the silhouette.
SEMANTIC = ("skin_neck", "eyes", "ears", "hair", "mouth", "ear_band", "hidden")
PARSING_OF_SEMANTIC = (1, 2, 3, 4, 5)  # ear_band and hidden have no parsing label
N_SEMANTIC_XOR = 4
PARSING_DRAW_ORDER = tuple(SEMANTIC.index(name) for name in ("skin_neck", "hair", "mouth", "ears", "eyes"))
N_COND_POSE = 12  # neck, jaw and eye rotations condition G and T (global rotation is rigid)


def parsing_map(soft: Tensor) -> Tensor:
    """Soft classes (..., len(SEMANTIC), H, W) as a parsing label map (..., H, W) for pictures: each
    class with a parsing label where its coverage passes 0.5, drawn in ``PARSING_DRAW_ORDER`` (skin
    first, eyes last, so the eyes and ears show over the skin they overlap); 0 elsewhere."""
    labels = torch.zeros(soft[..., 0, :, :].shape, dtype=torch.long, device=soft.device)
    for k in PARSING_DRAW_ORDER:
        labels[soft[..., k, :, :] > 0.5] = PARSING_OF_SEMANTIC[k]
    return labels


def face_semantic_labels(faces: Tensor, regions: dict[str, Tensor]) -> Tensor:
    """One SEMANTIC index per face: a face is eyes / ears / ear_band / hair(scalp) / mouth when all
    three of its vertices are in that head-model region (the first of these wins), else skin_neck."""
    labels = torch.zeros(faces.shape[0], dtype=torch.long, device=faces.device)
    for k, region in ((4, "mouth"), (3, "scalp"), (5, "ear_band"), (2, "ears"), (1, "eyes")):
        if region in regions:
            labels[regions[region][faces].all(dim=1)] = k
    return labels


def semantic_regions(regions: dict[str, Tensor], ear_region: str) -> dict[str, Tensor]:
    """The regions ``face_semantic_labels`` draws. ``ear_region`` "ears": the head model's own. "pinna":
    the ear class is the pinna, and the rest of ``ears`` (the band of scalp round ICT's ear, hair or
    skin in the images) is ``ear_band``, left out of the class terms."""
    if ear_region == "ears" or "ears" not in regions:
        return regions
    return {**regions, "ears": regions["pinna"], "ear_band": regions["ears"]}


def option_regions(head: HeadModel, cfg: NhaConfig) -> dict[str, Tensor]:
    """The head model's regions, plus ``pinna`` (``head.regions.pinna_mask``, by ray casting) when an
    option names it."""
    regions = dict(head.regions)
    named = set(cfg.offset_fixed_regions) | {name for name, _ in cfg.offset_lap_region_factors} | {cfg.semantic_ear_region}
    if "pinna" in named and "ears" in regions:
        pinna = pinna_mask(
            head.canonical_vertices.detach().cpu().numpy(), head.faces.cpu().numpy(), regions["ears"].cpu().numpy()
        )
        regions["pinna"] = torch.as_tensor(pinna, device=regions["ears"].device)
    return regions


def region_mask(regions: dict[str, Tensor], name: str, option: str) -> Tensor:
    """The CPU vertex mask of head-model region ``name``, which the config field ``option`` names."""
    if name not in regions:
        raise NhaBenchError(
            f"nha: {option} names {name!r}, a region the head model does not have", fix=f"use some of {sorted(regions)}"
        )
    return regions[name].cpu()


@dataclass
class Geometry:
    """Posed geometry of a batch: model/camera-frame vertices (metres) and the offsets."""

    verts_cam: Tensor  # (B, V, 3)
    offsets: Tensor  # (B, V, 3), model frame before the global rotation


class NhaAvatar(nn.Module):
    """Head model + networks; ``geometry`` poses the mesh, ``shade`` runs T on rasterized pixels."""

    def __init__(self, head: HeadModel, cfg: NhaConfig):
        super().__init__()
        self.head = head
        for p in head.parameters():
            p.requires_grad_(False)
        self.cfg = cfg
        canon = head.canonical_vertices
        lo, hi = canon.min(0).values, canon.max(0).values
        centre, half = (lo + hi) / 2, ((hi - lo) / 2).max()
        self.register_buffer("canonical", (canon - centre) / half)  # (V, 3) in [-1, 1]
        self.register_buffer("edges", unique_edges(head.faces))
        regions = option_regions(head, cfg)
        face_w = torch.ones(head.n_vertices)
        if "face" in regions:
            face_w[regions["face"].cpu()] = cfg.offset_face_factor  # the template face is accurate
        self.register_buffer("face_weight", face_w.to(canon.device))
        movable = torch.ones(head.n_vertices, 1)
        for name in cfg.offset_fixed_regions:
            movable[region_mask(regions, name, "offset_fixed_regions")] = 0.0
        self.register_buffer("offset_movable", movable.to(canon.device))  # (V, 1): 0 where G is off
        lap_weight = torch.ones(head.n_vertices)
        for name, factor in cfg.offset_lap_region_factors:
            mask = region_mask(regions, name, "offset_lap_region_factors")
            lap_weight[mask] = lap_weight[mask].clamp_min(factor)
        self.register_buffer("lap_weight", lap_weight.to(canon.device))  # (V,) Laplacian weight per vertex
        if cfg.offset_lap_frame not in ("vector", "normal"):
            raise NhaBenchError(f"nha: offset_lap_frame is {cfg.offset_lap_frame!r}", fix='use "vector" or "normal"')
        # (V, 3) the template's vertex normals: the "normal" Laplacian and the tangential magnitude
        # term split offsets along them (not in checkpoints: derived from the head model)
        self.register_buffer("template_normals", vertex_normals(canon, head.faces), persistent=False)
        if cfg.semantic_ear_region not in ("ears", "pinna"):
            raise NhaBenchError(f"nha: semantic_ear_region is {cfg.semantic_ear_region!r}", fix='use "ears" or "pinna"')
        labelled = semantic_regions(regions, cfg.semantic_ear_region)
        self.register_buffer("face_labels", face_semantic_labels(head.faces, labelled))
        classes = tuple(name for name in SEMANTIC if name != "hidden")  # "hidden" has no faces
        if not set(cfg.semantic_depth_exempt_classes) <= set(classes):
            raise NhaBenchError(
                f"nha: semantic_depth_exempt_classes is {list(cfg.semantic_depth_exempt_classes)}",
                fix=f"name classes among {list(classes)}",
            )
        if cfg.semantic_depth_exempt_classes and math.isinf(cfg.semantic_depth_tolerance_mm):
            raise NhaBenchError(
                "nha: semantic_depth_exempt_classes is set but there is no depth test to exempt from",
                fix="set semantic_depth_tolerance_mm (e.g. 1) or leave semantic_depth_exempt_classes out",
            )
        self.depth_exempt_labels = tuple(SEMANTIC.index(name) for name in cfg.semantic_depth_exempt_classes)
        self.n_expr_cond = min(cfg.n_expr_cond, head.n_expr)
        self.offset_mlp = OffsetMLP(N_COND_POSE, cfg.offset_width, cfg.offset_layers)
        self.normal_encoder = NormalPatchEncoder(cfg.normal_patch, cfg.normal_features)
        self.texture_mlp = TextureMLP(cfg.normal_features, self.n_expr_cond + N_COND_POSE, cfg.texture_width, cfg.texture_layers)

    @property
    def faces(self) -> Tensor:
        return self.head.faces

    def geometry_parameters(self) -> list[nn.Parameter]:
        return list(self.offset_mlp.parameters())

    def geometry_parameter_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """G's parameters as (sine layers, FiLM mapping + output layer): they may learn at different rates."""
        sine = list(self.offset_mlp.net.layers.parameters())
        ids = {id(p) for p in sine}
        return sine, [p for p in self.offset_mlp.parameters() if id(p) not in ids]

    def texture_parameters(self) -> list[nn.Parameter]:
        return list(self.normal_encoder.parameters()) + list(self.texture_mlp.parameters())

    def geometry(self, params: HeadParams) -> Geometry:
        """V = V_model(beta, psi, theta) + R_global G(v, theta), then to the camera frame.

        G's offsets live in the head frame before the global rotation (so they turn with the head);
        the head model applies the global rotation rigidly, hence R_global G is exact.
        """
        centred = HeadParams(params.shape, params.expr, params.pose, torch.zeros_like(params.translation))
        verts = self.head(centred)
        cond = params.pose[:, 3:]
        offsets = self.offsets(cond)
        rot = axis_angle_to_matrix(params.pose[:, :3])
        verts = verts + torch.einsum("bij,bvj->bvi", rot, offsets)
        return Geometry(model_to_camera(verts, params.translation), offsets)

    def offsets(self, cond: Tensor) -> Tensor:
        """G's per-vertex offsets as the mesh gets them (zero on ``offset_fixed_regions``), metres:
        cond (B, N_COND_POSE) joint poses -> (B, V, 3)."""
        return self.offset_mlp(self.canonical, cond) * self.offset_movable

    def neutral_offsets(self) -> Tensor:
        """G's offsets at the neutral joint pose, (1, V, 3) metres."""
        return self.offsets(self.canonical.new_zeros(1, N_COND_POSE))

    def landmarks_2d(self, verts_cam: Tensor, K: Tensor) -> Tensor:
        """(B, 68, 2) projected landmarks in pixels."""
        return project(self.head.landmarks(verts_cam), K)

    def semantics(self, verts_cam: Tensor, K: Tensor, height: int, width: int, sigma: float) -> Tensor:
        """Soft per-class silhouettes (B, len(SEMANTIC), H, W). Back faces are culled (the outline of a
        closed surface is unchanged, and the cost halves). Occlusion is ignored unless
        ``semantic_depth_tolerance_mm`` is finite: then a face whose centroid lies further than that
        behind the visible surface counts as ``hidden`` instead of its class, unless its class is one
        of ``semantic_depth_exempt_classes``."""
        soft = soft_silhouette(
            verts_cam, self.faces, K, height, width, sigma=sigma, face_labels=self.face_labels,
            n_labels=len(SEMANTIC), cull_backfaces=True, depth_tolerance=self.cfg.semantic_depth_tolerance_mm / 1000.0,
            hidden_label=SEMANTIC.index("hidden"), depth_exempt_labels=self.depth_exempt_labels,
        )
        return soft.permute(0, 3, 1, 2)

    def shade(
        self, verts_cam: Tensor, params: HeadParams, K: Tensor, height: int, width: int, with_rgb: bool
    ) -> dict[str, Tensor]:
        """Camera-space normals (B, 3, H, W), coverage (B, 1, H, W) and, when ``with_rgb``, T's
        colours (B, 3, H, W) (zero off the surface) of the rasterized mesh."""
        frags = rasterize(verts_cam, self.faces, K, height, width)
        normals = interpolate(vertex_normals(verts_cam, self.faces), self.faces, frags)
        normals = normals / normals.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        cover = frags.mask
        normals = normals * cover[..., None]
        out = {"normal": normals.permute(0, 3, 1, 2), "mask": cover[:, None].float()}
        if with_rgb:
            b = verts_cam.shape[0]
            points = interpolate(self.canonical, self.faces, frags)[cover]  # (P, 3), frame by frame
            feats = self.normal_encoder(out["normal"]).permute(0, 2, 3, 1)[cover]  # (P, C)
            frame_cond = torch.cat([params.expr[:, : self.n_expr_cond], params.pose[:, 3:]], dim=1)
            colours = self.texture_mlp(points, feats, frame_cond, cover.flatten(1).sum(1).tolist())
            rgb = torch.zeros(b, height, width, 3, dtype=colours.dtype, device=colours.device)
            rgb = rgb.index_put((cover,), colours)
            out["rgb"] = rgb.permute(0, 3, 1, 2)
        return out
