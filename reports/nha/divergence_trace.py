"""CPU trace of a divergence event of NHA's offset network G, step by step.

Runs the stage-1 growth probe's fit (`stage1_growth_probe.stage1_on_head_turn`) for STEPS steps and,
from step WATCH_FROM on, prints every step's offset terms, G's neutral offsets per head-model region
(RMS, mm), how far Adam moved G's parameters (L2 of the change: sine layers, FiLM mapping network,
output layer) and the gradient norms of the same three parts. Method options go in OVERRIDES_JSON
(e.g. `{"offset_fixed_regions": ["face", "eyes"], "lr_offset_sine_factor": 0.3}`).
Run as: python reports/nha/divergence_trace.py SUBJECT STEPS [OVERRIDES_JSON] [WATCH_FROM]
"""
import json
import sys
import time

import torch

from stage1_growth_probe import stage1_on_head_turn

subject_dir, steps = sys.argv[1], int(sys.argv[2])
overrides = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
watch_from = int(sys.argv[4]) if len(sys.argv) > 4 else 330
_, _, method = stage1_on_head_turn(subject_dir, overrides)
avatar = method.avatar
net = avatar.offset_mlp.net
regions = {k: v for k, v in avatar.head.regions.items() if k in ("face", "scalp", "ears", "eyes", "neck", "mouth")}
parts = {"layers": list(net.layers.parameters()), "mapping": list(net.mapping.parameters()), "head": list(net.head.parameters())}


def l2(tensors: list[torch.Tensor]) -> float:
    return float(torch.sqrt(sum((t**2).sum() for t in tensors)))


began, silhouette, offset_norm = time.time(), [], []
for step in range(steps):
    before = {k: [p.detach().clone() for p in ps] for k, ps in parts.items()} if step >= watch_from else None
    terms = method.train_iteration(step)
    silhouette.append(terms["silhouette"])
    offset_norm.append(terms["offset_norm"])
    if step % 25 == 24:
        print(step + 1, round(time.time() - began, 1), "s sil", round(sum(silhouette[-25:]) / 25, 4),
              "onorm max", round(max(offset_norm[-25:]), 4), flush=True)
    if before is not None:
        with torch.no_grad():
            neutral = avatar.neutral_offsets()[0] * 1000.0
            rms = {k: round(float(neutral[m].norm(dim=-1).pow(2).mean().sqrt()), 3) for k, m in regions.items()}
            delta = {k: round(l2([p - q for p, q in zip(ps, before[k])]), 5) for k, ps in parts.items()}
            grad = {k: round(l2([p.grad for p in ps if p.grad is not None]), 6) for k, ps in parts.items()}
        print(f"  step {step} onorm {terms['offset_norm']:.4f} lap {terms['offset_lap']:.4f} sil {terms['silhouette']:.4f} "
              f"rms_mm {rms} delta {delta} grad {grad}", flush=True)
