"""Metrics; importing this package registers every metric module in METRICS."""

from nha_bench.metrics import cpbd, image, lpips  # noqa: F401  (registers l1, msssim, lpips, cpbd)
from nha_bench.metrics import identity  # noqa: F401,E402  (registers csim)
from nha_bench.metrics import geometry  # noqa: F401,E402  (registers hausdorff_full, hausdorff_face, normal_error)
