"""Stage 2 (own process, needs ``bpy``): render posed frames with Cycles into multilayer EXRs.

Run as ``python -m nha_bench.datasets.synthetic.render_stage JOB.json WORKER N_WORKERS``; the worker
renders every N-th pending frame, converts it (``post.py``) and writes it through SubjectWriter.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import bpy
import numpy as np

ALPHA_FROM_TEXTURE = {"hair", "eyebrows", "eyelashes"}  # everything else is opaque (MakeHuman's .mtl is not)
ROUGHNESS = {"body": 0.55, "eyes": 0.15, "teeth": 0.35, "tongue": 0.4, "hair": 0.6, "eyebrows": 0.7, "eyelashes": 0.7}
MOUTH_COLOUR = (0.12, 0.03, 0.03, 1.0)  # inside of the head seen through the open mouth


def _polygons(faces: np.ndarray, uv: np.ndarray) -> tuple[list[list[int]], np.ndarray]:
    """Quads with a repeated vertex become triangles; returns polygons and their loop UVs."""
    polys, loop_uv = [], []
    for f, u in zip(faces, uv):
        keep = [k for k in range(4) if f[k] not in f[:k]]
        polys.append([int(f[k]) for k in keep])
        loop_uv.extend(u[keep])
    return polys, np.asarray(loop_uv, np.float32)


def _close_neck(polys: list[list[int]], loop_uv: np.ndarray, verts: np.ndarray, cap: np.ndarray):
    """Render-only cap over the neck cut: a fan to one extra vertex (the loop centre, appended last)."""
    uv_of = {}
    corner = 0
    for poly in polys:
        for v in poly:
            uv_of.setdefault(v, loop_uv[corner])
            corner += 1
    centre = len(verts)
    cap_uv = [np.concatenate([uv_of[b], uv_of[a], np.mean([uv_of[v] for v in cap[:, 0]], axis=0)]) for b, a in cap]
    polys = polys + [[int(b), int(a), centre] for b, a in cap]
    loop_uv = np.concatenate([loop_uv, np.asarray(cap_uv, np.float32).reshape(-1, 2)])
    return polys, loop_uv, np.vstack([verts, verts[np.unique(cap)].mean(axis=0)])


def _material(kind: str, texture: str, ear: bool = False) -> bpy.types.Material:
    """Principled BSDF with the MakeHuman texture. The body's materials also write two AOVs that the
    labels need: "ear" (1 on the ear faces) and "backface" (1 where the inside of the head shows)."""
    mat = bpy.data.materials.new(f"{kind}_ear" if ear else kind)
    mat.use_nodes = True
    nt = mat.node_tree
    bsdf = nt.nodes["Principled BSDF"]
    bsdf.inputs["Roughness"].default_value = ROUGHNESS[kind]
    tex = nt.nodes.new("ShaderNodeTexImage")
    tex.image = bpy.data.images.load(texture, check_existing=True)
    colour = tex.outputs["Color"]
    if kind == "body":
        geometry = nt.nodes.new("ShaderNodeNewGeometry")
        mix = nt.nodes.new("ShaderNodeMix")  # the open mouth shows the inside of the head: make it dark
        mix.data_type = "RGBA"
        nt.links.new(geometry.outputs["Backfacing"], mix.inputs["Factor"])
        nt.links.new(colour, mix.inputs[6])
        mix.inputs[7].default_value = MOUTH_COLOUR
        colour = mix.outputs[2]
        back = nt.nodes.new("ShaderNodeOutputAOV")
        back.aov_name = "backface"
        nt.links.new(geometry.outputs["Backfacing"], back.inputs["Value"])
        ear_aov = nt.nodes.new("ShaderNodeOutputAOV")
        ear_aov.aov_name = "ear"
        ear_aov.inputs["Value"].default_value = 1.0 if ear else 0.0
    nt.links.new(colour, bsdf.inputs["Base Color"])
    if kind in ALPHA_FROM_TEXTURE:
        nt.links.new(tex.outputs["Alpha"], bsdf.inputs["Alpha"])
    return mat


def build_scene(job: dict, first_coords: np.ndarray) -> list[tuple[bpy.types.Mesh, int, int]]:
    """Objects, materials, lights, render settings. Returns (mesh, start, end) vertex ranges."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    work = Path(job["work"])
    ident = json.loads((work / "identity.json").read_text())
    arrays = np.load(work / "identity.npz")
    expected = sum(o["n_vertices"] for o in ident["objects"])
    if len(first_coords) != expected:
        raise ValueError(f"posed vertices ({len(first_coords)}) do not match the identity ({expected}) in {work}: "
                         "delete that folder's coords/ and re-run")
    ear_faces = set(np.asarray(job.get("ear_body_faces", []), int).tolist())
    meshes, start = [], 0
    for index, obj_info in enumerate(ident["objects"]):
        kind, n = obj_info["kind"], obj_info["n_vertices"]
        polys, loop_uv = _polygons(arrays[f"{kind}_faces"], arrays[f"{kind}_uv"])
        verts = first_coords[start : start + n]
        if kind == "body":
            polys, loop_uv, verts = _close_neck(polys, loop_uv, verts, arrays["body_cap_edges"])
        mesh = bpy.data.meshes.new(kind)
        mesh.from_pydata(verts.tolist(), [], polys)
        uv_layer = mesh.uv_layers.new(name="uv")
        uv_layer.data.foreach_set("uv", loop_uv.ravel())
        mesh.shade_smooth()
        mesh.materials.append(_material(kind, obj_info["texture"]))
        if kind == "body" and ear_faces:
            mesh.materials.append(_material(kind, obj_info["texture"], ear=True))
            idx = np.array([1 if i in ear_faces else 0 for i in range(len(polys))], np.int32)
            mesh.polygons.foreach_set("material_index", idx)
        mesh.update()
        obj = bpy.data.objects.new(kind, mesh)
        obj.pass_index = index + 1
        scene.collection.objects.link(obj)
        meshes.append((mesh, start, start + n))
        start += n

    cam_data = bpy.data.cameras.new("cam")
    cam_data.sensor_fit = "HORIZONTAL"
    cam_data.sensor_width = 36.0
    res = job["res"]
    cam_data.lens = job["K"][0][0] * 36.0 / res
    cam_data.clip_start, cam_data.clip_end = 0.05, 10.0
    cam = bpy.data.objects.new("cam", cam_data)
    scene.collection.objects.link(cam)
    scene.camera = cam

    centre = np.asarray(ident["head_centre_m"])
    for name, offset, energy, size in (("key", (0.6, 0.5, 1.2), 25.0, 0.6), ("fill", (-0.9, 0.1, 0.9), 10.0, 0.9),
                                       ("rim", (0.0, 0.6, -1.0), 12.0, 0.5)):
        light = bpy.data.lights.new(name, "AREA")
        light.energy, light.size = energy, size
        lo = bpy.data.objects.new(name, light)
        lo.location = (centre + np.asarray(offset)).tolist()
        direction = centre - np.asarray(lo.location)
        lo.rotation_mode = "QUATERNION"
        lo.rotation_quaternion = _track_quaternion(direction)
        scene.collection.objects.link(lo)
    world = bpy.data.worlds.new("world")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.35
    scene.world = world

    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = job["samples"]
    scene.cycles.use_denoising = job.get("denoise", False)
    scene.cycles.max_bounces = 2  # measured: more bounces cost time and change little on a bare head
    scene.cycles.diffuse_bounces = scene.cycles.glossy_bounces = 1
    scene.cycles.use_light_tree = False
    scene.render.use_persistent_data = True  # keep BVH and textures between frames (~0.8 s/frame saved)
    scene.view_settings.view_transform = "Standard"  # post.py applies the plain sRGB curve to the EXR
    scene.render.threads_mode = "FIXED"
    scene.render.threads = job.get("threads", 1)
    scene.render.resolution_x = scene.render.resolution_y = res
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = True
    scene.render.image_settings.media_type = "MULTI_LAYER_IMAGE"
    scene.render.image_settings.color_depth = "32"
    scene.render.image_settings.exr_codec = "ZIP"
    layer = scene.view_layers[0]
    layer.use_pass_normal = True
    layer.use_pass_z = True
    layer.use_pass_object_index = True
    layer.pass_alpha_threshold = 0.5
    for name in ("ear", "backface"):
        aov = layer.aovs.add()
        aov.name, aov.type = name, "VALUE"
    return meshes


def _track_quaternion(direction: np.ndarray) -> tuple[float, float, float, float]:
    """Quaternion turning Blender's -Z (light/camera forward) towards ``direction``."""
    from mathutils import Vector

    return tuple(Vector(direction.tolist()).to_track_quat("-Z", "Y"))


def set_camera(R: np.ndarray, t: np.ndarray) -> None:
    """OpenCV world->camera (R, t) -> Blender camera matrix_world (camera looks down -Z, +Y up)."""
    from mathutils import Matrix

    flip = np.diag([1.0, -1.0, -1.0])
    c2w = np.eye(4)
    c2w[:3, :3] = R.T @ flip
    c2w[:3, 3] = -R.T @ t
    bpy.context.scene.camera.matrix_world = Matrix(c2w.tolist())


def main(job_path: str, worker: int, n_workers: int) -> None:
    from nha_bench.datasets.format import SubjectWriter
    from nha_bench.datasets.synthetic import post

    job = json.loads(Path(job_path).read_text())
    work = Path(job["work"])
    frames = job["frames"][worker::n_workers]
    if not frames:
        return
    coords0 = np.load(work / "coords" / f"{frames[0]:06d}.npy")
    meshes = build_scene(job, coords0)
    cap_ids = np.unique(np.load(work / "identity.npz")["body_cap_edges"])
    cams = np.load(work / "cameras.npz")
    exr_only = job.get("exr_only", False)  # used once by define_regions.py, before regions.json exists
    writer = None if exr_only else SubjectWriter(job["out"], force=True)
    context = None if exr_only else post.FrameContext.from_job(job)
    for index in frames:
        coords = np.load(work / "coords" / f"{index:06d}.npy")
        for mesh, a, b in meshes:
            verts = coords[a:b]
            if mesh.name == "body":
                verts = np.vstack([verts, verts[cap_ids].mean(axis=0)])
            mesh.vertices.foreach_set("co", verts.ravel())
            mesh.update()
        set_camera(cams["R"][index], cams["t"][index])
        exr = work / "exr" / f"{index:06d}.exr"
        bpy.context.scene.render.filepath = str(exr)
        bpy.ops.render.render(write_still=True)
        if not exr_only:
            post.finish_frame(exr, index, coords, cams["R"][index], cams["t"][index], context, writer)
        print(f"@@frame {index}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
