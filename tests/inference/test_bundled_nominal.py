"""The bundled regressor at the nominal point: MLE fits of reference-simulation datasets."""

from __future__ import annotations

import numpy as np

from neuromct_tf.inference.batched import BatchedLikelihood, fit_mle_batched
from neuromct_tf.models.bundled import default_regressor_path
from neuromct_tf.models.regressor import load_regressor
from neuromct_tf.specs import default_spec
from neuromct_tf.validation.pseudodata import SimulationPool, simulate_datasets

NOMINAL = np.array([15.45, 0.525, 10100.0])
NUM_DATASETS = 12


def test_bundled_regressor_fits_nominal_datasets():
    spec = default_spec()
    model, _ = load_regressor(default_regressor_path(), spec)
    pool = SimulationPool(1)
    try:
        datasets = simulate_datasets(spec, NOMINAL, 10_000, range(NUM_DATASETS), seed=2024, stream="bundled", pool=pool)
    finally:
        pool.close()
    result = fit_mle_batched(
        BatchedLikelihood(model, spec, spec.sources), datasets.counts, np.arange(NUM_DATASETS), num_starts=2,
    )
    assert result.converged.all()
    pulls = (result.points[:, :3] - NOMINAL) / result.errors[:, :3]
    # Over 200 datasets (docs/benchmarks.md) the pull means are -0.08 to +0.17 and the widths
    # 0.91 to 1.00. Here the mean of 12 pulls has a standard error of 0.29, so |mean| < 1.1 is
    # more than 3 standard errors from the benchmark's means; a broken model fails it.
    assert np.all(np.abs(pulls.mean(axis=0)) < 1.1), pulls.mean(axis=0)
    # The 68 % interval covers the truth in 24.5 of 36 cases on average (standard deviation 2.8);
    # 16 is 3 standard deviations below.
    assert np.sum(np.abs(pulls) < 1.0) >= 16, pulls
    # 36 normal pulls exceed 4 in size with a probability of 0.2 %.
    assert np.all(np.abs(pulls) < 4.0), pulls
