#!/usr/bin/env bash
# Fit NHA on every packed subject of one dataset on the GPU machine, one after another, and bring
# back one .tgz per subject under $OUT (its tracking.npz, the run folder with the checkpoint after
# the test-time fit, train_log.jsonl with the quality-vs-time probe, the log). Render and score
# here afterwards with `nha-bench run` on the same subjects (the runner finds the fitted checkpoint).
#
#   usage (device): bash scripts/gpu_campaign.sh DATASET PACKED_DIR BUDGET_S [nha-bench run options]
#   carry: .whl (trimesh, rtree and pytorch-msssim wheels; fitting needs no libigl) and PACKED_DIR (scripts/pack_subject.py
#   pack); PACKED_DIR/_runs, if present, holds run folders of earlier calls to resume.
#   TEST_FIT_RESERVE_S (default 80): seconds kept free for each subject's test-time fit.
# Each subject gets an equal share of the time left when its turn comes. One fit alone on an H200
# (paper preset, 3000 steps + test-time fit of 24 frames): ~3.9 min (202 s + 30 s, reports/nha/README.md,
# session 26), so two subjects fit one 10-minute call; fits sharing the GPU are slower in sum.
set -u
dataset=$1 packed=$2 budget=$3
shift 3
TEST_FIT_RESERVE_S=${TEST_FIT_RESERVE_S:-80}
began=$(date +%s)
runs=/tmp/runs
mkdir -p "$runs"
[ -d "$packed/_runs" ] && cp -r "$packed/_runs/." "$runs/"  # run folders of earlier calls resume
source scripts/gpu_prepare.sh
subjects=()
for subject in "$work"/*/; do [ -f "$subject/tracking.npz" ] && subjects+=("$(basename "$subject")"); done
for k in "${!subjects[@]}"; do
    name=${subjects[$k]}
    left=$(( (budget - ($(date +%s) - began) - 20) / (${#subjects[@]} - k) ))
    # training stops early enough for this subject's test-time fit; an unfinished fit resumes
    # from PACKED_DIR/_runs in the next call
    train_budget=$((left - TEST_FIT_RESERVE_S))
    [ "$train_budget" -lt 60 ] && train_budget=60
    timeout "$left" python3 -m nha_bench run --methods nha --dataset "$dataset" --data-root "$work" \
        --subjects "$name" --preset paper --runs-dir "$runs" --results "$runs/results.jsonl" \
        --device cuda --fit-only --probe-every 250 --train-budget-s "$train_budget" "$@" > "$work/$name.log" 2>&1
done
nvidia-smi --query-gpu=name,memory.used --format=csv > "$OUT/gpu_$dataset.txt"
for subject in "$work"/*/; do
    name=$(basename "$subject")
    tar -czf "$OUT/${dataset}_$name.tgz" -C "$work" "$name/tracking.npz" "$name.log" \
        -C "$runs" "nha/$dataset/$name" 2>/dev/null
done
echo "campaign $dataset: $(( $(date +%s) - began )) s"
