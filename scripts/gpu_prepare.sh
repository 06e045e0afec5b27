# Sourced by the GPU-machine scripts (gpu_campaign.sh, gpu_sweep.sh) after they set dataset, packed
# and budget: installs the carried wheels, then unpacks PACKED_DIR into $work and tracks the subjects
# that have no tracking.npz (at most half the budget); the summary and log go to $OUT.
python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
work=/tmp/work/$dataset/$(basename "$packed")  # one work folder per call: several may share the GPU
mkdir -p "$OUT"
python3 scripts/gpu_track.py --packed "$packed" --work "$work" --summary "$OUT/track_$dataset.json" \
    --preset tiny --budget-s $((budget / 2)) > "$OUT/track_$dataset.log" 2>&1
