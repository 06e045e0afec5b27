"""Orchestration of the two generator stages for each subject; the entry point is :func:`generate`."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from nha_bench.datasets.format import SubjectMeta, SubjectWriter
from nha_bench.datasets.synthetic import post, spec
from nha_bench.datasets.synthetic.assets import makehuman_root
from nha_bench.datasets.validate import validate_subject
from nha_bench.errors import DatasetError, ExistsError, NhaBenchError, UnavailableError

FIELDS = ("rgb", "mask", "parsing", "normal", "mesh")
PROGRESS_PREFIX = "@@frame "
DATASET = "synthetic"
SOURCE = ("nha-bench synthetic generator: MakeHuman 1.x head (hm08 base mesh, face pose units) "
          "rendered with Blender Cycles on CPU")
LICENSE = "CC0-1.0 (MakeHuman assets); the generated data carries no further restriction"
_REQUIREMENTS = {"bpy": "bpy==5.0.1", "mhcore": "makehuman-mcp (pip install --no-deps makehuman-mcp)",
                 "OpenEXR": "openexr==3.5.3"}


def missing_requirements() -> list[str]:
    """Packages the generator needs that are not importable here."""
    return [pkg for mod, pkg in _REQUIREMENTS.items() if importlib.util.find_spec(mod) is None]


def _run_stage(module: str, args: list[str], log: Path, env: dict) -> subprocess.Popen:
    cmd = [sys.executable, "-u", "-m", f"nha_bench.datasets.synthetic.{module}", *args]
    with open(log, "ab") as err:  # the child keeps its own copy of the handle
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env)


def _follow(procs: list[tuple[subprocess.Popen, Path]], progress: Progress, task) -> None:
    """Advance the bar on each finished frame; if a stage fails, stop the others and raise naming its log."""
    import selectors

    sel = selectors.DefaultSelector()
    for proc, log in procs:
        sel.register(proc.stdout, selectors.EVENT_READ, (proc, log))
    running = len(procs)
    while running:
        for key, _ in sel.select():
            line = key.fileobj.readline()
            if line.startswith(PROGRESS_PREFIX):
                progress.advance(task)
            elif not line:
                sel.unregister(key.fileobj)
                running -= 1
                proc, log = key.data
                if proc.wait() != 0:
                    for other, _ in procs:
                        if other.poll() is None:
                            other.terminate()
                            other.wait()
                    tail = log.read_text(errors="replace").strip().splitlines()[-15:]
                    raise NhaBenchError(f"generator stage failed (exit {proc.returncode}):\n" + "\n".join(tail), log,
                                        fix="see the log; re-run the same command to resume")


def _ear_faces(work: Path) -> list[int]:
    arrays = np.load(work / "identity.npz")
    ears = np.isin(arrays["body_base_ids"], post.load_regions()["ears"])
    return np.flatnonzero(ears[arrays["body_faces"]].all(axis=1)).tolist()


def pending_frames(writer: SubjectWriter, work: Path, n: int) -> list[int]:
    """Frames still to render: a frame is done when all its files and its landmark row exist."""
    return [i for i in range(n) if not (writer.has_frame(i, FIELDS) and (work / "landmarks" / f"{i:06d}.npy").is_file())]


def _existing(root: Path, res: int, n_frames: int, force: bool) -> bool:
    """True if a finished subject with the same size is there (skip it); wipe it when ``force``."""
    if force and root.exists():
        if not ((root / "meta.json").is_file() or (root / ".work").is_dir()):
            raise ExistsError("refusing to delete a folder that is not a generated subject", root,
                              fix="choose another --out")
        shutil.rmtree(root)
        return False
    if not (root / "meta.json").is_file():
        return False
    meta = json.loads((root / "meta.json").read_text())
    if meta.get("width") != res or meta.get("n_frames") != n_frames:
        raise ExistsError(f"subject exists with {meta.get('width')}px x {meta.get('n_frames')} frames, "
                          f"asked for {res}px x {n_frames}", root, fix="pass --force to regenerate it")
    return True


def generate_subject(subject: spec.SubjectSpec, out: Path, train: int, val: int, res: int, seed: int, force: bool,
                     workers: int, data_root: Path, samples: int, turn_yaw: float, progress: Progress) -> Path:
    """Generate (or resume) one subject folder and return it."""
    root = out / subject.name
    if _existing(root, res, train + val, force):
        progress.console.print(f"{subject.name}: complete, skipped (--force regenerates it)")
        return root
    t0 = time.time()
    writer = SubjectWriter(root, force=True)
    work = root / ".work"
    work.mkdir(parents=True, exist_ok=True)
    subject_seed = seed * 1000 + subject.seed
    frames, splits, views = spec.sequence(train, val, subject_seed, turn_yaw)
    n = len(frames)
    pending = pending_frames(writer, work, n)
    env = {**os.environ, "MHCORE_DATA": str(data_root), "PYTHONUNBUFFERED": "1"}
    subject_dict = spec.spec_dict(subject)
    subject_dict["seed"] = subject_seed

    t_pose = time.time()
    need_coords = [i for i in pending if not (work / "coords" / f"{i:06d}.npy").is_file()]
    if need_coords or not (work / "identity.json").is_file():
        job = {"data_root": str(data_root), "work": str(work), "subject": subject_dict,
               "frames": [{"index": i, "params": frames[i]} for i in need_coords]}
        (work / "mh_job.json").write_text(json.dumps(job))
        task = progress.add_task(f"{subject.name} pose", total=len(need_coords))
        proc = _run_stage("mh_stage", [str(work / "mh_job.json")], work / "mh_stage.log", env)
        _follow([(proc, work / "mh_stage.log")], progress, task)
    t_render = time.time()
    ident = json.loads((work / "identity.json").read_text())
    target = np.asarray(ident["head_centre_m"]) + np.array([0.0, -0.03, 0.0])  # a little low: show the neck
    distance = spec.CAMERA_DISTANCE_M * ident["bust_height_m"] / spec.REFERENCE_BUST_M
    R, t = spec.cameras(views, target, subject_seed, distance)
    np.savez(work / "cameras.npz", R=R, t=t)
    K = spec.intrinsics(res)

    if pending:
        n_workers = max(1, min(workers, len(pending)))
        threads = max(1, (os.cpu_count() or 1) // n_workers)
        rjob = {"work": str(work), "out": str(root), "res": res, "K": K.tolist(), "samples": samples,
                "frames": pending, "threads": threads, "ear_body_faces": _ear_faces(work)}
        (work / "render_job.json").write_text(json.dumps(rjob))
        task = progress.add_task(f"{subject.name} render", total=len(pending))
        procs = []
        for w in range(n_workers):
            log = work / f"render_{w}.log"
            procs.append((_run_stage("render_stage", [str(work / "render_job.json"), str(w), str(n_workers)], log, env),
                          log))
        _follow(procs, progress, task)

    timing = {"pose_s": round(t_render - t_pose, 1), "render_s": round(time.time() - t_render, 1),
              "frames_done_now": len(pending), "workers": workers}
    landmarks = np.stack([np.load(work / "landmarks" / f"{i:06d}.npy") for i in range(n)]).astype(np.float32)
    writer.write_array("landmarks", landmarks)
    writer.write_arrays("cameras", {"R": R.astype(np.float32), "t": t.astype(np.float32)})
    params = {"subject": subject_dict, "modifiers": ident["modifiers"], "views": views, "frames": frames,
              "units": "pose in degrees (yaw, pitch, roll of the neck chain); units: MakeHuman face pose unit weights"}
    (root / "params.json").write_text(json.dumps(params))
    meta = SubjectMeta(
        subject=subject.name, dataset=DATASET, fps=spec.FPS, width=res, height=res, intrinsics=K.tolist(),
        n_frames=n, splits=splits, source=SOURCE, license=LICENSE, fields=list(FIELDS),
        models={"landmarks": "ground truth: 68 MakeHuman base-mesh vertices (iBUG order), projected; "
                             "visibility from the depth pass",
                "parsing": "ground truth: Cycles object index + AOV passes", "normal": "ground truth: Cycles normal pass",
                "mesh": "ground truth: MakeHuman head+neck skin and hair proxy (no eyes/teeth/brows), mm, camera frame"},
        extra={"generator": "nha_bench.datasets.synthetic", "seed": seed, "subject_seed": subject_seed,
               "camera_distance_m": round(distance, 4), "train_turn_yaw_deg": turn_yaw,
               "samples": samples, "background": "white", "views": views, "params": "params.json",
               "labels": {"eyebrows": 1, "eyelashes": 1, "teeth": 5, "tongue": 5,
                          "inside of the head seen through the mouth": 5},
               "mesh_masks": {"head": "skin vertices with skinning weight of the head bone and its children > 0.5",
                              "hair": "vertices of the hair proxy",
                              "face": "head vertices inside the 68-landmark outline (brows raised 40%) in front "
                                      "of the jaw-angle landmarks; see regions.json"},
               "wall_time_s": round(time.time() - t0, 1), "timing": timing},
    )
    writer.finish(meta)
    problems = validate_subject(root)
    if problems:
        raise DatasetError("generated subject does not validate:\n" + "\n".join(map(str, problems[:10])), root)
    shutil.rmtree(work)
    return root


def generate(out: Path, subjects: int = 4, train: int = 200, val: int = 210, res: int = 512, seed: int = 0,
             force: bool = False, workers: int = 2, data_root: Path | None = None, samples: int = 16,
             turn_yaw: float = spec.TRAIN_TURN_YAW) -> list[Path]:
    """Generate ``subjects`` synthetic MakeHuman subjects (2 female, 2 male) under ``out``.

    Each gets ``train`` then ``val`` frames at ``res``x``res`` (val: unseen poses/expressions, the
    last 2/7 from novel camera views). Finished subjects are skipped and unfinished ones resume
    frame by frame; ``force`` regenerates. ``workers`` bpy processes render in parallel with
    ``samples`` Cycles samples per pixel. The training frames open with a head turn to +-``turn_yaw``
    degrees. Returns the subject folders.
    """
    missing = missing_requirements()
    if missing:
        raise UnavailableError(f"the synthetic generator needs {', '.join(missing)}", fix=f"pip install {' '.join(missing)}")
    if not 1 <= subjects <= len(spec.SUBJECTS):
        raise NhaBenchError(f"--subjects must be 1..{len(spec.SUBJECTS)}, got {subjects}",
                            fix="the generator defines 4 subjects (2 female, 2 male)")
    if train < 1 or val < 0 or res < 16 or samples < 1 or not 0 <= turn_yaw <= 90:
        raise NhaBenchError(f"need train >= 1, val >= 0, res >= 16, samples >= 1, 0 <= turn_yaw <= 90 "
                            f"(got {train}, {val}, {res}, {samples}, {turn_yaw})", fix="fix the arguments")
    root = makehuman_root(data_root)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns) as progress:
        return [generate_subject(s, out, train, val, res, seed, force, workers, root, samples, turn_yaw, progress)
                for s in spec.SUBJECTS[:subjects]]
