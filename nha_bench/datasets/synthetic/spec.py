"""What to generate: subject identities, seeded smooth motion and cameras (pure numpy)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter1d

# Face pose units (MakeHuman poseunits/face-poseunits.json) driven together as one channel:
# name -> (units, max weight). Validation adds expressions that never occur in training.
TRAIN_CHANNELS: dict[str, tuple[tuple[str, ...], float]] = {
    "jaw_open": (("JawDrop",), 0.7),
    "smile": (("MouthLeftPullUp", "MouthRightPullUp"), 0.8),
    "frown": (("MouthLeftPullDown", "MouthRightPullDown"), 0.7),
    "brows_up": (("LeftInnerBrowUp", "RightInnerBrowUp", "LeftOuterBrowUp", "RightOuterBrowUp"), 0.8),
    "brows_down": (("LeftBrowDown", "RightBrowDown"), 0.7),
    "cheeks_up": (("LeftCheekUp", "RightCheekUp"), 0.6),
    "upper_lip_up": (("UpperLipUp",), 0.5),
    "lower_lip_down": (("lowerLipDown",), 0.5),
}
VAL_ONLY_CHANNELS: dict[str, tuple[tuple[str, ...], float]] = {
    "kiss": (("LipsKiss",), 0.8),
    "cheeks_pump": (("CheeksPump",), 0.7),
    "mouth_left": (("MouthMoveLeft",), 0.7),
    "mouth_right": (("MouthMoveRight",), 0.7),
    "jaw_stretch": (("JawDropStretched",), 0.7),
    "nose_wrinkle": (("NoseWrinkler",), 0.7),
}
BLINK_UNITS = ("LeftUpperLidClosed", "RightUpperLidClosed")
# Head pose limits in degrees (yaw, pitch, roll); validation reaches further in pitch and roll.
TRAIN_LIMITS = (30.0, 15.0, 15.0)
# The training sequence opens with a head turn (0 -> +TURN_YAW -> -TURN_YAW -> 0), as in a capture
# where the subject first turns the head: without side views no silhouette sees the back of the
# head, and a monocular method cannot recover the skull's depth (reports/nha/README.md, session 5).
TRAIN_TURN_FRACTION = 0.25
TRAIN_TURN_YAW = 60.0
VAL_LIMITS = (38.0, 20.0, 18.0)
NOVEL_VIEW_FRACTION = 2 / 7  # of the validation frames (60 of 210)
NOVEL_VIEW_YAW = (30.0, 50.0)  # degrees, camera orbit for novel views
NOVEL_VIEW_PITCH = 15.0
CAMERA_DISTANCE_M = 1.0  # for a head+neck of REFERENCE_BUST_M; scaled so every subject fills the frame alike
REFERENCE_BUST_M = 0.25
FOCAL_OVER_WIDTH = 2.4  # fx = 2.4 * width: the image spans ~0.42 m at 1 m
FPS = 25.0


@dataclass
class SubjectSpec:
    """One synthetic identity: MakeHuman macros, assets and the seed for its face shape."""

    name: str
    gender: float  # 0 female .. 1 male
    ethnicity: dict[str, float]  # African / Asian / Caucasian macro weights
    age: float
    skin: str  # skins/<name>/<name>.mhmat
    hair: str  # hair/<name>/<name>.mhclo
    eyes: str  # eyes/materials/<name>.mhmat
    eyebrows: str
    eyelashes: str
    seed: int
    modifiers: dict[str, float] = field(default_factory=dict)


SUBJECTS = (
    SubjectSpec("subject_f1", 0.0, {"Caucasian": 1.0}, 0.5, "young_caucasian_female2", "long01", "blue",
                "eyebrow010", "eyelashes02", 0),
    SubjectSpec("subject_m1", 1.0, {"African": 1.0}, 0.5, "young_african_male", "short01", "brown",
                "eyebrow001", "eyelashes01", 1),
    SubjectSpec("subject_f2", 0.0, {"Asian": 1.0}, 0.6, "middleage_asian_female", "ponytail01", "brownlight",
                "eyebrow006", "eyelashes03", 2),
    SubjectSpec("subject_m2", 1.0, {"Caucasian": 0.7, "African": 0.3}, 0.55, "young_caucasian_male", "short02",
                "green", "eyebrow003", "eyelashes01", 3),
)

FACE_MODIFIER_GROUPS = ("head", "neck", "ears", "eyes", "eyebrows", "nose", "mouth", "chin", "cheek", "forehead")


def random_modifiers(names: list[str], rng: np.random.Generator, scale: float = 0.2) -> dict[str, float]:
    """Seeded head/face modifier values: two-sided ones ~ N(0, scale) clipped to +-2.5 scale, and one
    of the one-sided head shapes (oval, round, square, ...) at 0.2..0.6; left/right pairs share a
    value so faces stay near-symmetric (strong random values of all 146 at once look deformed)."""
    values: dict[str, float] = {}
    one_sided = []
    for name in sorted(names):
        group, _, rest = name.partition("/")
        if group not in FACE_MODIFIER_GROUPS:
            continue
        if "|" not in rest:
            one_sided.append(name)
            continue
        twin = name.replace("/r-", "/l-")
        values[name] = values[twin] if twin in values else float(np.clip(rng.normal(0.0, scale), -2.5 * scale, 2.5 * scale))
    for name in one_sided:
        values[name] = 0.0
    if one_sided:
        values[one_sided[int(rng.integers(len(one_sided)))]] = float(rng.uniform(0.2, 0.6))
    return values


def _smooth(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """Smooth zero-mean noise of unit peak magnitude (Gaussian-filtered white noise)."""
    pad = int(4 * sigma)
    x = gaussian_filter1d(rng.normal(size=n + 2 * pad), sigma)[pad : pad + n]
    return x / max(np.abs(x).max(), 1e-8)


def _blinks(rng: np.random.Generator, n: int) -> np.ndarray:
    """Blink weights: short closed-eye pulses every ~2-4 s at 25 fps."""
    w = np.zeros(n)
    t = int(rng.integers(10, 60))
    while t < n:
        for k, v in enumerate((0.5, 1.0, 0.6)):
            if t + k < n:
                w[t + k] = v
        t += int(rng.integers(50, 100))
    return w


def motion(n: int, rng: np.random.Generator, limits: tuple[float, float, float],
           channels: dict[str, tuple[tuple[str, ...], float]]) -> list[dict]:
    """Per-frame head pose (degrees) and face-unit weights along smooth random trajectories."""
    if n == 0:
        return []
    pose = np.stack([lim * _smooth(rng, n, sigma=12.0) for lim in limits], axis=1)
    weights = {}
    for name, (_, peak) in channels.items():
        s = _smooth(rng, n, sigma=8.0)
        weights[name] = peak * np.clip((s - 0.2) / 0.8, 0.0, 1.0)  # active ~ a third of the time
    blink = _blinks(rng, n)
    frames = []
    for i in range(n):
        units: dict[str, float] = {}
        for name, (unit_names, _) in channels.items():
            for u in unit_names:
                if weights[name][i] > 1e-3:
                    units[u] = round(float(weights[name][i]), 4)
        for u in BLINK_UNITS:
            if blink[i] > 0:
                units[u] = float(blink[i])
        yaw, pitch, roll = (round(float(v), 3) for v in pose[i])
        frames.append({"yaw": yaw, "pitch": pitch, "roll": roll, "units": units})
    return frames


def add_head_turn(frames: list[dict], n_turn: int, peak_yaw: float) -> None:
    """Open ``frames`` with a head turn: over the first ``n_turn`` frames the yaw follows
    peak * sin(2 pi t) while the random motion fades in (so the sequence stays smooth)."""
    for i in range(min(n_turn, len(frames))):
        t = i / n_turn
        fade = 0.5 - 0.5 * np.cos(np.pi * t)
        frame = frames[i]
        frame["yaw"] = round(float(peak_yaw * np.sin(2 * np.pi * t) + fade * frame["yaw"]), 3)
        frame["pitch"] = round(float(fade * frame["pitch"]), 3)
        frame["roll"] = round(float(fade * frame["roll"]), 3)


def sequence(train: int, val: int, seed: int,
             turn_yaw: float = TRAIN_TURN_YAW) -> tuple[list[dict], dict[str, list[int]], list[str]]:
    """Frames (pose + units) of train then val, the splits, and each frame's camera kind. The
    training frames open with a head turn (TRAIN_TURN_FRACTION of them, up to +-``turn_yaw``
    degrees); the validation frames do not depend on ``turn_yaw``."""
    rng = np.random.default_rng(seed)
    frames = motion(train, rng, TRAIN_LIMITS, TRAIN_CHANNELS)
    add_head_turn(frames, int(round(train * TRAIN_TURN_FRACTION)), turn_yaw)
    frames += motion(val, rng, VAL_LIMITS, {**TRAIN_CHANNELS, **VAL_ONLY_CHANNELS})
    n_novel = int(round(val * NOVEL_VIEW_FRACTION))
    views = ["front"] * (train + val - n_novel) + ["novel"] * n_novel
    splits = {"train": list(range(train)), "val": list(range(train, train + val))}
    return frames, splits, views


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = np.array([0.0, 1.0, 0.0])) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV world->camera (R, t) for a camera at ``eye`` looking at ``target`` (y up in world)."""
    z = target - eye
    z = z / np.linalg.norm(z)
    x = np.cross(z, up)
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    return R, -R @ eye


def cameras(views: list[str], target: np.ndarray, seed: int,
            distance: float = CAMERA_DISTANCE_M) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame extrinsics: a fixed frontal camera, and seeded orbit positions for novel views."""
    rng = np.random.default_rng(seed + 1000)
    Rs, ts = [], []
    for view in views:
        yaw = pitch = 0.0
        if view == "novel":
            yaw = float(rng.uniform(*NOVEL_VIEW_YAW)) * float(rng.choice([-1, 1]))
            pitch = float(rng.uniform(-NOVEL_VIEW_PITCH, NOVEL_VIEW_PITCH))
        a, b = np.radians(yaw), np.radians(pitch)
        eye = target + distance * np.array([np.sin(a) * np.cos(b), np.sin(b), np.cos(a) * np.cos(b)])
        R, t = look_at(eye, target)
        Rs.append(R)
        ts.append(t)
    return np.asarray(Rs, np.float64), np.asarray(ts, np.float64)


def intrinsics(res: int) -> np.ndarray:
    """Square-pixel pinhole K with the principal point at the image centre."""
    f = FOCAL_OVER_WIDTH * res
    return np.array([[f, 0, res / 2], [0, f, res / 2], [0, 0, 1]], dtype=np.float64)


def spec_dict(spec: SubjectSpec) -> dict:
    return asdict(spec)
