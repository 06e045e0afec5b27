"""nha-bench: a benchmark and evaluation suite for monocular 4D head avatars."""

__version__ = "0.1.0"
