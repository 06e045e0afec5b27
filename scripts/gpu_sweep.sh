#!/usr/bin/env bash
# Fit several NHA configurations side by side on the GPU machine (one process each, sharing the
# GPU) and bring back one .tgz per configuration under $OUT: its run folder with a checkpoint
# slimmed of optimiser states (networks + per-frame parameters, ~5 MB), train_log.jsonl and the log.
# Score them here with `python reports/nha/sweep_score.py SUBJECT RUN/checkpoint SHEET OPTIONS`.
#
#   usage (device): bash scripts/gpu_sweep.sh DATASET PACKED_DIR BUDGET_S SPEC [SPEC ...]
#   SPEC: TAG=SUBJECT:FIELD=JSON[ FIELD=JSON ...]  (one nha option per word, JSON without spaces),
#         e.g. 'f1_lap10=subject_f1:w_offset_lap=10 iterations=1800 stage_fractions=[1.0,0.0]'
#   carry: .whl (trimesh, pytorch-msssim wheels) and PACKED_DIR (scripts/pack_subject.py pack).
# At most 6 SPECs: the device returns 8 files (6 + the tracking summary and log). Every fit stops
# training at BUDGET_S minus the start-up and TEST_FIT_RESERVE_S (default 30), keeping its checkpoint.
set -u
dataset=$1 packed=$2 budget=$3
shift 3
TEST_FIT_RESERVE_S=${TEST_FIT_RESERVE_S:-30}
began=$(date +%s)
source scripts/gpu_prepare.sh
train_budget=$((budget - ($(date +%s) - began) - TEST_FIT_RESERVE_S - 30))
pids=()
for spec in "$@"; do
    tag=${spec%%=*}
    rest=${spec#*=}
    subject=${rest%%:*}
    options=()
    set -f  # JSON lists are not file patterns
    for option in ${rest#*:}; do options+=(--option "$option"); done
    set +f
    mkdir -p "/tmp/sweep/$tag"
    python3 -m nha_bench run --methods nha --dataset "$dataset" --data-root "$work" --subjects "$subject" \
        --preset paper --runs-dir "/tmp/sweep/$tag" --results "/tmp/sweep/$tag/results.jsonl" --device cuda \
        --fit-only --probe-every 250 --train-budget-s "$train_budget" "${options[@]}" > "/tmp/sweep/$tag/fit.log" 2>&1 &
    pids+=($!)
done
wait "${pids[@]}"
for spec in "$@"; do
    tag=${spec%%=*}
    python3 - "/tmp/sweep/$tag" <<'EOF'
import sys, pathlib, torch
for path in pathlib.Path(sys.argv[1]).rglob("nha.pt"):
    state = torch.load(path, map_location="cpu", weights_only=True)
    state.pop("optim", None)
    torch.save(state, path)
EOF
    tar -czf "$OUT/$tag.tgz" -C "/tmp/sweep" "$tag"
done
nvidia-smi --query-gpu=name,memory.used --format=csv >> "$OUT/track_$dataset.log"
echo "sweep $dataset: $(( $(date +%s) - began )) s"
