#!/usr/bin/env bash
# Evaluate the bundled regressor and the interpolation baseline, as recorded in docs/benchmarks.md.
#
# Simulates the high-statistics reference grid (1M decays per source at five
# testing1 points) and the testing1 grid (10k decays per source at 1000
# points) with fixed seeds, then runs 'neuromct-tf evaluate' on each.
#
# Usage: scripts/evaluate_default_regressor.sh [WORK_DIR]   (default: grids/, holding training.root)
set -euo pipefail

work_dir=${1:-grids}
cli=${NEUROMCT_TF:-.venv/bin/neuromct-tf}

[ -f "$work_dir/reference.root" ] || $cli simulate reference --out "$work_dir" --jobs 2 --seed 20261206
[ -f "$work_dir/testing1.root" ] || $cli simulate testing1 --out "$work_dir" --jobs 2 --seed 20261207

for test in reference testing1; do
    $cli evaluate --test "$work_dir/$test.root" --training "$work_dir/training.root" \
        --out "$work_dir/evaluation-$test" --overwrite
done
