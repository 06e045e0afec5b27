#!/usr/bin/env bash
# Here (CPU, ~12 min on 2 cores): everything the GPU scripts need for the four shared real clips,
# from an empty checkout. Prepares each clip at 512^2 without tracking (crop, landmarks, masks,
# parsing), reduces it to its train frames plus 24 evenly spaced val frames, brings that subset to
# 256^2 (the resolution the GPU fits and the scoring use), tracks it with the tracker's `tiny`
# preset and packs it for the carry (JPEG 90). Steps that are done already are skipped, so a killed
# run is simply started again. Scoring later reads DATA_DIR/subsets/real256.
#
#   usage: bash scripts/prepare_real_carry.sh [DATA_DIR] [CARRY_DIR] [VIDEOS_DIR]
#          (defaults: data .carry/real ../shared/videos; needs the `real` extra: `make setup-synth`)
#   then (device, carry .whl and two clips of CARRY_DIR): bash scripts/gpu_sweep.sh real DIR ...
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-data} carry=${2:-.carry/real} videos=${3:-../shared/videos}
bin=.venv/bin
[ -x $bin/nha-bench ] || { echo "run 'make setup-synth' first" >&2; exit 2; }
for video in "$videos"/*.mp4; do
    name=$(basename "$video" .mp4)
    [ -f "$data/real/$name/meta.json" ] ||
        $bin/nha-bench data prepare "$video" --out "$data/real/$name" --res 512 --no-track --device cpu
    [ -f "$data/subsets/real/$name/meta.json" ] ||
        $bin/python scripts/pack_subject.py subset "$data/real/$name" "$data/subsets/real/$name" --val-frames 24
    if [ ! -f "$data/subsets/real256/$name/meta.json" ]; then
        $bin/python scripts/pack_subject.py pack "$data/subsets/real/$name" "$data/packed256/$name" --res 256 --quality 95
        $bin/python scripts/pack_subject.py unpack "$data/packed256/$name" "$data/subsets/real256/$name"
    fi
done
bash scripts/track_and_pack.sh "$data/subsets/real256" "$carry"
du -sh "$carry"/*
