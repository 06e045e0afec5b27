"""Neural Head Avatars (``nha``); importing this package registers the method."""

from nha_bench.methods.nha.method import Nha

__all__ = ["Nha"]
