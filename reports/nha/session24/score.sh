#!/usr/bin/env bash
# Score session 24's fits (new defaults, no options) on the CPU.
set -u
cd /work/main
nb=.venv/bin/nha-bench
syn="--dataset synthetic --data-root /work/data/subsets/synthetic"
real="--dataset real --data-root /work/data/subsets/real256"
for s in 1 2; do for t in f2 m2; do
  $nb run --methods nha $syn --preset paper --device cpu --seed $s --runs-dir runs/s24/df_${t}_s$s --results runs/s24/synthetic_seeds12.jsonl --subjects subject_$t
done; done
for t in d9 d14; do
  $nb run --methods nha $real --preset paper --device cpu --runs-dir runs/s24/df_$t --results runs/s24/real_seed0.jsonl --subjects $t
done
for s in 1 2; do for t in d3 d6 d9 d14; do
  $nb run --methods nha $real --preset paper --device cpu --seed $s --runs-dir runs/s24/df_${t}_s$s --results runs/s24/real_seeds12.jsonl --subjects $t
done; done
echo done
