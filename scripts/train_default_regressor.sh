#!/usr/bin/env bash
# Reproduce the bundled default regressor, neuromct_tf/models/default_regressor.keras.
#
# Simulates the training and validation grids of the default spec with fixed
# seeds, trains the regressor with the default sizes and a fixed seed, and
# copies the best model into the package. On a 2-core machine the training
# grid takes about 20 to 30 minutes, the validation grid about 2 and the
# training about 25 (recorded in docs/benchmarks.md). The training runs on one
# thread, as it did for the bundled model, because sums split over several
# threads may round differently and give a slightly different model.
#
# Usage: scripts/train_default_regressor.sh [WORK_DIR]   (default: grids/)
set -euo pipefail

work_dir=${1:-grids}
cli=${NEUROMCT_TF:-.venv/bin/neuromct-tf}
mkdir -p "$work_dir"

[ -f "$work_dir/training.root" ] || $cli simulate training --out "$work_dir" --jobs 2 --seed 20261204
[ -f "$work_dir/validation.root" ] || $cli simulate validation --out "$work_dir" --jobs 2 --seed 20261205

TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 \
    $cli train-regressor "$work_dir/training.root" --validation "$work_dir/validation.root" \
    --out "$work_dir/regressor.keras" --seed 1 --epochs 160 --patience 30 --overwrite \
    2>&1 | tee "$work_dir/train_regressor.log"

cp "$work_dir/regressor.keras" neuromct_tf/models/default_regressor.keras
