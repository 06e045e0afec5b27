#!/usr/bin/env bash
# Track every subject below SUBSETS_DIR with the tracker's `tiny` preset on the CPU (tracked subjects
# are skipped) and pack each one not yet in CARRY_DIR for the GPU carry (JPEG 90, no meshes).
# Called by prepare_synthetic_carry.sh and prepare_real_carry.sh from the repository root.
#
#   usage: bash scripts/track_and_pack.sh SUBSETS_DIR CARRY_DIR
set -euo pipefail
subsets=$1 carry=$2
bin=.venv/bin
$bin/nha-bench data track "$subsets" --preset tiny --device cpu
for subset in "$subsets"/*/; do
    name=$(basename "$subset")
    [ -f "$carry/$name/meta.json" ] || $bin/python scripts/pack_subject.py pack "$subset" "$carry/$name" --quality 90
done
