#!/usr/bin/env bash
# Score session 25's fits on the CPU, every one with the normal-frame Laplacian (the GPU calls fit
# it with --option 'offset_lap_frame="normal"'; scoring needs the same option to find the checkpoint).
set -u
cd /work/main
nl=(--option 'offset_lap_frame="normal"')
run() { .venv/bin/nha-bench run --methods nha --preset paper --device cpu "${nl[@]}" "$@"; }
syn=(--dataset synthetic --data-root /work/data/subsets/synthetic)
real=(--dataset real --data-root /work/data/subsets/real256)
for t in f1 f2 m1 m2; do
  run "${syn[@]}" --runs-dir runs/s25/nl_$t --results runs/s25/synthetic_nl.jsonl --subjects subject_$t
done
for s in 1 2; do
  run "${syn[@]}" --seed $s --runs-dir runs/s25/nl_f1_s$s --results runs/s25/synthetic_nl_f1_seeds12.jsonl --subjects subject_f1
done
for t in d3 d14; do
  run "${real[@]}" --runs-dir runs/s25/nl_$t --results runs/s25/real_nl.jsonl --subjects $t
done
echo done
