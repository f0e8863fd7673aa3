"""The statistical model, the MLE and the HMC posterior on pseudo-data from the tiny regressor."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from fitdata import TRUTH, pseudo_data
from scipy import stats

from neuromct_tf.errors import InvalidInputError
from neuromct_tf.inference.fit import FitConfig, run_fit
from neuromct_tf.inference.model import PosteriorModel
from neuromct_tf.inference.sampling import SamplerConfig
from neuromct_tf.models.regressor import predict_spectra

# 20k events per source give posterior widths of a few % of the box, so the posterior stays
# away from its edges and is close to Gaussian.
EVENTS = 20_000
SHORT_RUN = SamplerConfig(num_chains=8, num_burnin_steps=40, num_results=60, seed=2)


@pytest.fixture(scope="module")
def posterior_fit(fit_model):
    observed = pseudo_data(fit_model["model"], fit_model["spec"], TRUTH, EVENTS, seed=1)
    return run_fit(fit_model["model"], fit_model["spec"], observed, FitConfig(sampler=SHORT_RUN, truth=TRUTH))


def test_log_prob_equals_poisson_sum(fit_model):
    model, spec = fit_model["model"], fit_model["spec"]
    sources = ("Cs137", "Co60", "AmC")
    observed = pseudo_data(model, spec, TRUTH, 5000, seed=4, sources=sources)
    posterior = PosteriorModel(model, spec, observed, norm_range=(0.8, 1.2))
    point = np.array([12.0, 0.3, 9500.0])
    norms = np.array([0.95, 1.0, 1.1])
    state = tf.constant(np.concatenate([point, norms])[None], tf.float64)

    probabilities = predict_spectra(model, np.tile(point, (3, 1)), observed.source_ids)
    rates = norms[:, None] * observed.num_in_range[:, None] * probabilities
    expected = stats.poisson.logpmf(observed.counts, rates).sum()
    box = spec.box()
    expected -= np.log(box[:, 1] - box[:, 0]).sum() + 3 * np.log(1.2 - 0.8)

    # The model's softmax (float32) and the fit's float64 log-softmax of the logits differ by
    # ~1e-7 relative in p, which moves a sum of 15k counts * log p by ~1e-3.
    assert posterior.target_log_prob(state).numpy()[0] == pytest.approx(expected, abs=1e-2)
    assert posterior.log_likelihood(state).numpy()[0] == pytest.approx(
        stats.poisson.logpmf(observed.counts, rates).sum(), abs=1e-2
    )


def test_log_prob_outside_box_is_minus_infinity(fit_model):
    model, spec = fit_model["model"], fit_model["spec"]
    observed = pseudo_data(model, spec, TRUTH, 1000, seed=4, sources=("K40",))
    posterior = PosteriorModel(model, spec, observed)
    state = tf.constant([[12.0, 0.3, 9500.0, 1.3]], tf.float64)
    assert posterior.target_log_prob(state).numpy()[0] == -np.inf


def test_hmc_chains_shape_and_rhat(posterior_fit):
    samples = posterior_fit.posterior
    num_params = 3 + 5
    assert samples.samples.shape == (SHORT_RUN.num_results, SHORT_RUN.num_chains, num_params)
    assert samples.log_posterior.shape == (SHORT_RUN.num_results, SHORT_RUN.num_chains)
    assert posterior_fit.names[3:] == tuple(f"norm_{source}" for source in ("Cs137", "K40", "Co60", "AmBe", "AmC"))
    # 8 chains of 60 draws: split R-hat of converged chains scatters by about 0.01 around 1,
    # while unconverged chains from dispersed starts give values far above 1.1.
    assert np.all(samples.diagnostics.r_hat < 1.05)
    assert samples.diagnostics.num_divergences == 0
    assert 0.5 < samples.diagnostics.acceptance_rate <= 1.0


def test_posterior_covers_truth(posterior_fit):
    # The data seed is fixed, so this test is deterministic. For a calibrated posterior each
    # parameter falls outside its central 95 % interval with probability 5 %.
    for name, value in zip(("kB", "fC", "LY"), TRUTH):
        low, high = posterior_fit.summary(name).interval95
        assert low < value < high, f"{name} = {value} outside the 95 % interval [{low}, {high}]"
    for source in ("Cs137", "K40", "Co60", "AmBe", "AmC"):
        low, high = posterior_fit.summary(f"norm_{source}").interval95
        assert low < 1.0 < high


def test_mle_matches_posterior_mean(posterior_fit):
    for name in ("kB", "fC", "LY"):
        summary = posterior_fit.summary(name)
        # For a near-Gaussian posterior under flat priors the MLE is the mode and the mean; with
        # ESS > 300 the Monte Carlo error of the mean is below 0.06 standard deviations.
        assert abs(summary.mle - summary.mean) < 0.3 * summary.std, name
        # The Hessian error is the width of the Laplace approximation of the same posterior.
        assert summary.mle_error == pytest.approx(summary.std, rel=0.25), name


def test_map_is_best_draw(posterior_fit):
    samples = posterior_fit.posterior
    best = np.unravel_index(np.argmax(samples.log_posterior), samples.log_posterior.shape)
    np.testing.assert_array_equal(posterior_fit.best_point, samples.samples[best])
    assert posterior_fit.best_counts.shape == (5, 160)


def test_same_seed_same_chains(fit_model):
    model, spec = fit_model["model"], fit_model["spec"]
    observed = pseudo_data(model, spec, TRUTH, 5000, seed=6, sources=("Cs137", "AmBe"))

    def chains(seed):
        config = FitConfig(sampler=SamplerConfig(num_chains=4, num_burnin_steps=6, num_results=5, seed=seed))
        return run_fit(model, spec, observed, config).posterior.samples

    np.testing.assert_array_equal(chains(7), chains(7))


def test_nuts_sampler_runs(fit_model):
    model, spec = fit_model["model"], fit_model["spec"]
    observed = pseudo_data(model, spec, TRUTH, EVENTS, seed=1, sources=("Co60", "AmC"))
    config = FitConfig(sampler=SamplerConfig(sampler="nuts", num_chains=4, num_burnin_steps=20, num_results=20, seed=3))
    samples = run_fit(model, spec, observed, config).posterior
    assert samples.samples.shape == (20, 4, 5)
    assert np.all(np.isfinite(samples.samples))
    assert samples.diagnostics.mean_leapfrog_steps >= 1


def test_mle_method_gaussian_intervals(fit_model):
    model, spec = fit_model["model"], fit_model["spec"]
    observed = pseudo_data(model, spec, TRUTH, EVENTS, seed=1)
    result = run_fit(model, spec, observed, FitConfig(method="mle", sampler=SamplerConfig(seed=2)))
    assert result.posterior is None
    assert result.mle.converged
    summary = result.summary("LY")
    low, high = summary.interval68
    assert summary.mle_error > 0
    assert (high - low) / 2 == pytest.approx(0.994458 * summary.mle_error, rel=1e-6)
    np.testing.assert_allclose(np.diag(result.correlation), 1.0)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"num_chains": 0}, "number of chains 0"),
        ({"num_results": 2}, "at least 4 draws"),
        ({"sampler": "mala"}, "unknown sampler"),
    ],
)
def test_sampler_config_rejects_invalid(settings, message):
    with pytest.raises(InvalidInputError, match=message):
        SamplerConfig(**settings)
