"""Avatar methods. Each module registers itself in ``nha_bench.registry.METHODS``; heavy
imports stay inside the method modules so that listing methods stays cheap."""

from nha_bench.methods import headmodel, nha  # noqa: F401  (register "headmodel" and "nha")
from nha_bench.methods.external import EXTERNAL_METHODS

__all__ = ["EXTERNAL_METHODS"]
