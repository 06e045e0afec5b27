"""Synthetic MakeHuman head dataset (`nha-bench data synth`): ground truth for every metric.

Two stages in separate processes (mhcore and bpy must not share one): ``mh_stage`` builds each
identity and its posed frames, ``render_stage`` renders them with Cycles (CPU) and writes the
frames through :class:`~nha_bench.datasets.format.SubjectWriter`. Seeded and resumable.
"""

from __future__ import annotations

from nha_bench.datasets.synthetic.pipeline import generate

__all__ = ["generate"]
