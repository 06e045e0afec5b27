#!/usr/bin/env bash
# Here (CPU, ~30 min on 2 cores): everything the GPU scripts need for the four synthetic subjects,
# from an empty checkout. Generates the dataset at 256^2 (~24 min), reduces each subject to its
# train frames plus 24 evenly spaced val frames, tracks them with the tracker's `tiny` preset
# (~0.5 min each), packs them for the carry (JPEG 90, no meshes) and downloads the wheels the GPU
# machine lacks into .whl (Python 3.12 builds). Steps that are done already are skipped, so a
# killed run is simply started again. Scoring later reads DATA_DIR/subsets/synthetic.
#
#   usage: bash scripts/prepare_synthetic_carry.sh [DATA_DIR] [CARRY_DIR]   (defaults: data .carry/synthetic)
#   then (device, carry .whl and CARRY_DIR): bash scripts/gpu_sweep.sh synthetic CARRY_DIR ... or gpu_campaign.sh
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-data} carry=${2:-.carry/synthetic}
bin=.venv/bin
[ -x $bin/nha-bench ] || { echo "run 'make setup-synth' first" >&2; exit 2; }
$bin/nha-bench data synth --out "$data/synthetic_256" --res 256 --workers 2
for source in "$data"/synthetic_256/*/; do
    name=$(basename "$source")
    [ -f "$data/subsets/synthetic/$name/meta.json" ] ||
        $bin/python scripts/pack_subject.py subset "$source" "$data/subsets/synthetic/$name" --val-frames 24
done
bash scripts/track_and_pack.sh "$data/subsets/synthetic" "$carry"
$bin/python -m pip download -q --dest .whl --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    "trimesh==5.2.0" "rtree==1.4.1" "pytorch-msssim==1.0.0"  # fitting needs no libigl (13 MB); rtree: trimesh's ray casting (the derived `pinna` region)
du -sh "$carry" .whl
