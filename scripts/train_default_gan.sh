#!/usr/bin/env bash
# Reproduce the bundled default GAN generator, neuromct_tf/models/default_gan.keras.
#
# Simulates the training and validation grids of the default spec with the
# same seeds as scripts/train_default_regressor.sh (skipped when the files
# exist), trains the conditional WGAN-GP with the default sizes and seed 1,
# and copies the best generator into the package. The training is sized for
# about 35 minutes on 2 CPU cores; docs/benchmarks.md records the run.
#
# Usage: scripts/train_default_gan.sh [GRID_DIR] [OUT_DIR]   (defaults: grids/ and GRID_DIR/gan)
set -euo pipefail

grid_dir=${1:-grids}
out_dir=${2:-$grid_dir/gan}
cli=${NEUROMCT_TF:-.venv/bin/neuromct-tf}
mkdir -p "$grid_dir" "$out_dir"

[ -f "$grid_dir/training.root" ] || $cli simulate training --out "$grid_dir" --jobs 2 --seed 20261204
[ -f "$grid_dir/validation.root" ] || $cli simulate validation --out "$grid_dir" --jobs 2 --seed 20261205

$cli train-gan "$grid_dir/training.root" --validation "$grid_dir/validation.root" \
    --out "$out_dir/gan.keras" --seed 1 --epochs 36 --steps-per-epoch 250 --overwrite \
    2>&1 | tee "$out_dir/train_gan.log"

cp "$out_dir/gan.keras" neuromct_tf/models/default_gan.keras
