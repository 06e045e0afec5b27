"""Head-model tracker (landmarks + photometric, Face2Face-style) that writes ``tracking.npz``."""

from nha_bench.tracking.camera import camera_to_model, head_vertices_camera, model_to_camera
from nha_bench.tracking.config import TrackerConfig
from nha_bench.tracking.tracker import track_subject

__all__ = ["TrackerConfig", "camera_to_model", "head_vertices_camera", "model_to_camera", "track_subject"]
