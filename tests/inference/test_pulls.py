"""Pulls of the MLE on pseudo-data drawn from the tiny regressor, where the model is exactly right."""

from __future__ import annotations

import numpy as np
import pytest
from fitdata import TRUTH, pseudo_data
from scipy import stats

from neuromct_tf.inference.fit import FitConfig, run_fit
from neuromct_tf.inference.sampling import SamplerConfig

NUM_DATASETS = 30
EVENTS = 20_000
# L-BFGS starts per fit. With the truth inside the box and an exact model, 3 starts find the optimum.
# Each fit takes about 2 s on 2 loaded CPU cores, most of it tracing the graphs of a new PosteriorModel.
NUM_STARTS = 3


@pytest.fixture(scope="module")
def mle_pulls(fit_model):
    """Pulls (MLE - truth) / Hessian error of kB, fC and LY, shape (NUM_DATASETS, 3)."""
    model, spec = fit_model["model"], fit_model["spec"]
    pulls = []
    # fit_mle takes one dataset, so the datasets are fitted in a loop, each with its own seed.
    for index in range(NUM_DATASETS):
        observed = pseudo_data(model, spec, TRUTH, EVENTS, seed=100 + index)
        config = FitConfig(method="mle", sampler=SamplerConfig(seed=index), num_starts=NUM_STARTS)
        result = run_fit(model, spec, observed, config)
        assert result.mle.converged, f"dataset {index}: MLE not converged (EDM {result.mle.edm:.3g})"
        row = []
        for name, value in zip(("kB", "fC", "LY"), TRUTH):
            summary = result.summary(name)
            row.append((summary.mle - value) / summary.mle_error)
        pulls.append(row)
    return np.array(pulls)


@pytest.mark.parametrize("index, name", [(0, "kB"), (1, "fC"), (2, "LY")])
def test_pull_mean_near_zero(mle_pulls, index, name):
    # The mean of N unit-normal pulls has standard error 1/sqrt(N), and the bound is 3 of them (0.55 for N = 30).
    mean = mle_pulls[:, index].mean()
    assert abs(mean) < 3.0 / np.sqrt(NUM_DATASETS), f"{name}: pull mean {mean:.3f}"


@pytest.mark.parametrize("index, name", [(0, "kB"), (1, "fC"), (2, "LY")])
def test_pull_width_near_one(mle_pulls, index, name):
    # For N unit-normal pulls, (N - 1) s^2 follows a chi-square distribution with N - 1 degrees of
    # freedom. The band is its central 99.8 %, which is 0.63 < s < 1.42 for N = 30.
    dof = NUM_DATASETS - 1
    low, high = np.sqrt(stats.chi2.ppf([0.001, 0.999], dof) / dof)
    width = mle_pulls[:, index].std(ddof=1)
    assert low < width < high, f"{name}: pull width {width:.3f} outside [{low:.2f}, {high:.2f}]"
