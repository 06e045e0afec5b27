"""Real-video subjects: `nha-bench data prepare VIDEO` (see README.md in this folder)."""

from nha_bench.datasets.video.pipeline import prepare

__all__ = ["prepare"]
