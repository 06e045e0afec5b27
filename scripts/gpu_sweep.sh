#!/usr/bin/env bash
# Fit several NHA configurations side by side on the GPU machine (one process each, spread round
# robin over the host's GPUs) and bring back one .tgz per subject under $OUT: the run folders of its
# finished configurations, each with a checkpoint slimmed of optimiser states (networks + per-frame
# parameters, ~5 MB), train_log.jsonl and the log. A fit the budget stopped keeps its optimiser
# states (~16 MB) and comes back alone as TAG.resume.tgz; unpack it into PACKED_DIR/_sweep/ and run
# the same SPEC again to continue it where it stopped (fits longer than one call).
# Score them here with `nha-bench run --runs-dir RUNS/TAG --device cpu` and the same --option/--seed (reports/nha/README.md).
#
#   usage (device): bash scripts/gpu_sweep.sh DATASET PACKED_DIR BUDGET_S SPEC [SPEC ...]
#   SPEC: TAG=SUBJECT:FIELD=JSON[ FIELD=JSON ...]  (one nha option per word, JSON without spaces;
#         the word seed=N is the run's --seed), e.g.
#         'f1_lap10=subject_f1:w_offset_lap=10 iterations=1800 stage_fractions=[1.0,0.0]'
#   carry: .whl (trimesh, rtree, pytorch-msssim wheels) and PACKED_DIR (scripts/pack_subject.py pack); with
#          the repository (32 MiB) all four packed synthetic subjects (27 MiB) fit the 64 MiB a call
#          carries (2026-11-29), or all four clips (24 MiB).
# At most 6 subjects (the device returns 8 files: 6 + the tracking summary and log) and two
# configurations per subject (a .tgz stays under the 16 MiB a file may have). Every fit stops
# training at BUDGET_S minus the start-up and TEST_FIT_RESERVE_S (default 30), keeping its checkpoint.
set -u
dataset=$1 packed=$2 budget=$3
shift 3
TEST_FIT_RESERVE_S=${TEST_FIT_RESERVE_S:-30}
began=$(date +%s)
source scripts/gpu_prepare.sh
train_budget=$((budget - ($(date +%s) - began) - TEST_FIT_RESERVE_S - 30))
gpus=$(nvidia-smi -L | wc -l)
pids=()
declare -A tags_of=()  # subject -> its configurations' tags (one .tgz per subject)
for spec in "$@"; do
    tag=${spec%%=*}
    rest=${spec#*=}
    subject=${rest%%:*}
    tags_of[$subject]+="$tag "
    options=()
    set -f  # JSON lists are not file patterns
    for option in ${rest#*:}; do
        if [[ $option == seed=* ]]; then options+=(--seed "${option#seed=}"); else options+=(--option "$option"); fi
    done
    set +f
    [ -d "$packed/_sweep/$tag" ] && cp -r "$packed/_sweep/$tag" /tmp/sweep/  # an earlier call's unfinished fit
    mkdir -p "/tmp/sweep/$tag"
    CUDA_VISIBLE_DEVICES=$((${#pids[@]} % gpus)) python3 -m nha_bench run --methods nha --dataset "$dataset" \
        --data-root "$work" --subjects "$subject" --preset paper --runs-dir "/tmp/sweep/$tag" \
        --results "/tmp/sweep/$tag/results.jsonl" --device cuda --fit-only --probe-every 250 \
        --train-budget-s "$train_budget" "${options[@]}" >> "/tmp/sweep/$tag/fit.log" 2>&1 &
    pids+=($!)
done
wait "${pids[@]}"
unfinished=$(python3 scripts/slim_runs.py /tmp/sweep)  # slims the finished fits' checkpoints
for tag in $unfinished; do tar -czf "$OUT/$tag.resume.tgz" -C /tmp/sweep "$tag"; done
for subject in "${!tags_of[@]}"; do
    tags=()
    for tag in ${tags_of[$subject]}; do [[ " $unfinished " == *" $tag "* ]] || tags+=("$tag"); done
    [ ${#tags[@]} -gt 0 ] && tar -czf "$OUT/$subject.tgz" -C /tmp/sweep "${tags[@]}"
done
nvidia-smi --query-gpu=name,memory.used --format=csv >> "$OUT/track_$dataset.log"
echo "sweep $dataset: $(( $(date +%s) - began )) s"
