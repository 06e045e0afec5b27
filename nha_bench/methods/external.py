"""External methods (DVP, FOMM, Bi-Layer, VariTex, ...): renders produced elsewhere, scored here.

They have no training loop in nha-bench: their renders are put in an outputs folder named like
the test split (see :mod:`nha_bench.outputs`) and scored by ``nha-bench evaluate``, with the
same metric code as native methods. Their entries here carry the numbers the NHA paper reported
(Table 2), shown beside measured ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ExternalMethod:
    """Name, display name and the scores the NHA paper reported for an external method."""

    name: str
    display_name: str
    paper_scores: dict[str, float] = field(default_factory=dict)


def _table2(l1: float, msssim: float, lpips: float, csim: float, cpbd: float) -> dict[str, float]:
    return {"l1": l1, "msssim": msssim, "lpips": lpips, "csim": csim, "cpbd": cpbd}


# NHA paper, Table 2 (real data, averaged over all validation frames of its four subjects).
EXTERNAL_METHODS = {
    m.name: m
    for m in (
        ExternalMethod("varitex", "VariTex", _table2(0.207, 0.640, 0.316, 0.347, 0.565)),
        ExternalMethod("bilayer", "Bi-Layer", _table2(0.108, 0.805, 0.283, 0.757, 0.403)),
        ExternalMethod("fomm", "FOMM", _table2(0.055, 0.911, 0.201, 0.800, 0.370)),
        ExternalMethod("dvp", "DVP", _table2(0.042, 0.904, 0.098, 0.815, 0.632)),
        ExternalMethod("nerface", "NerFACE", _table2(0.057, 0.897, 0.156, 0.864, 0.485)),
    )
}
