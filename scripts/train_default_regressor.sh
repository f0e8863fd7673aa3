#!/usr/bin/env bash
# Reproduce the bundled default regressor, neuromct_tf/models/default_regressor.keras.
#
# Simulates the training and validation grids of the default spec with fixed
# seeds, trains four regressors with the default sizes and seeds 1 to 4, and
# distils their ensemble (the mean of their probabilities) into one
# regressor that starts from the weights of seed 3. The distilled model is
# copied into the package. On a 2-core machine the training grid takes about
# 20 to 30 minutes, the validation grid about 2, each member about 25 (two
# run side by side) and the distillation about 10 (recorded in
# docs/benchmarks.md). Every training runs on one thread, as it did for the
# bundled model, because sums split over several threads may round
# differently and give a slightly different model.
#
# Usage: scripts/train_default_regressor.sh [WORK_DIR]   (default: grids/)
set -euo pipefail

work_dir=${1:-grids}
cli=${NEUROMCT_TF:-.venv/bin/neuromct-tf}
mkdir -p "$work_dir"
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1

[ -f "$work_dir/training.root" ] || $cli simulate training --out "$work_dir" --jobs 2 --seed 20261204
[ -f "$work_dir/validation.root" ] || $cli simulate validation --out "$work_dir" --jobs 2 --seed 20261205

train_member() {
    $cli --quiet train-regressor "$work_dir/training.root" --validation "$work_dir/validation.root" \
        --out "$work_dir/member_seed$1.keras" --seed "$1" --epochs 160 --patience 160 --overwrite \
        > "$work_dir/member_seed$1.log" 2>&1
}
# Two members at a time, one per core; waiting on each job stops the script if it failed.
for pair in "1 2" "3 4"; do
    read -r first second <<< "$pair"
    train_member "$first" & first_job=$!
    train_member "$second" & second_job=$!
    wait "$first_job"
    wait "$second_job"
done

teachers=()
for seed in 1 2 3 4; do teachers+=(--teacher "$work_dir/member_seed$seed.keras"); done
$cli train-regressor "$work_dir/training.root" --validation "$work_dir/validation.root" \
    --out "$work_dir/regressor.keras" --init "$work_dir/member_seed3.keras" "${teachers[@]}" \
    --seed 12 --epochs 40 --patience 40 --learning-rate 3e-4 --warmup-epochs 2 --overwrite \
    2>&1 | tee "$work_dir/train_regressor.log"

cp "$work_dir/regressor.keras" neuromct_tf/models/default_regressor.keras
