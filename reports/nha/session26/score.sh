#!/usr/bin/env bash
# Session 26: score the m1 fits of 3000 / 6000 / 12000 steps (alone on one H200) here on the CPU.
# Run from the repository root; RUNS (default runs/s26) holds the unpacked device .tgz files.
set -eu
runs=${RUNS:-runs/s26}
score() {  # TAG ITERATIONS
    .venv/bin/nha-bench run --methods nha --dataset synthetic --data-root /work/data/subsets/synthetic \
        --preset paper --device cpu --option "iterations=$2" --runs-dir "$runs/$1" \
        --results "reports/nha/session26/results_synthetic_$1.jsonl" --subjects subject_m1
}
score l3k_m1 3000
score l6k_m1 6000
score l12k_m1 12000
