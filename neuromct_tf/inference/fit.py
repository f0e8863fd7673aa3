"""The fit of kB, fC and LY to calibration spectra: MLE, then optionally the posterior by MCMC."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from neuromct_tf.errors import InvalidInputError
from neuromct_tf.inference.mle import MLEResult, fit_mle
from neuromct_tf.inference.model import DEFAULT_NORM_RANGE, ObservedSpectra, PosteriorModel
from neuromct_tf.inference.sampling import PosteriorSamples, SamplerConfig, sample_posterior, stateless_seed
from neuromct_tf.specs import DataSpec

logger = logging.getLogger(__name__)

METHODS = ("mcmc", "mle")

# Half-widths, in standard deviations, of the central 68 % and 95 % intervals of a normal distribution.
_Z68 = 0.994457883
_Z95 = 1.959963985


@dataclass(frozen=True)
class FitConfig:
    """Settings of a fit.

    Attributes
    ----------
    method : str
        ``mcmc`` (MLE, then posterior sampling with ``sampler``) or ``mle`` (MLE only).
    sampler : SamplerConfig
        Chains, sampler and seed; its seed also draws the MLE starts.
    norm_range : (float, float)
        Uniform prior range of each normalisation n_s.
    num_starts : int
        L-BFGS starts of the MLE.
    truth : tuple of 3 float or None
        Known (kB, fC, LY), for pseudo-data; reported and drawn, never used by the fit.
    """

    method: str = "mcmc"
    sampler: SamplerConfig = SamplerConfig()
    norm_range: tuple[float, float] = DEFAULT_NORM_RANGE
    num_starts: int = 6
    truth: tuple[float, float, float] | None = None

    def __post_init__(self):
        if self.method not in METHODS:
            raise InvalidInputError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.num_starts < 1:
            raise InvalidInputError(f"invalid number of MLE starts {self.num_starts}; give at least 1")
        low, high = self.norm_range
        if not (np.isfinite(low) and np.isfinite(high) and 0.0 < low < high):
            raise InvalidInputError(
                f"invalid normalisation range {low:g},{high:g}: give two numbers 0 < low < high, e.g. 0.8,1.2"
            )


@dataclass(frozen=True)
class ParameterSummary:
    """Point estimates and intervals of one parameter.

    For ``mcmc`` the values are posterior statistics of the draws; for ``mle``
    the mean and median are the MLE and the intervals are MLE +- 0.994 and
    1.960 Hessian errors (Gaussian approximation).

    Attributes
    ----------
    name, unit : str
        Parameter name and unit.
    mean, median, std : float
        Posterior mean, median and standard deviation.
    interval68, interval95 : (float, float)
        Central 68 % and 95 % intervals.
    map : float
        Value at the draw of highest posterior density (the MLE for ``mle``).
    mle, mle_error : float
        Maximum-likelihood estimate and its Hessian error (NaN if undefined).
    """

    name: str
    unit: str
    mean: float
    median: float
    std: float
    interval68: tuple[float, float]
    interval95: tuple[float, float]
    map: float
    mle: float
    mle_error: float


@dataclass(frozen=True)
class FitResult:
    """Everything a fit produces.

    Attributes
    ----------
    method : str
        ``mcmc`` or ``mle``.
    names : tuple of str
        ``kB``, ``fC``, ``LY``, then ``norm_SOURCE`` per observed source.
    observed : ObservedSpectra
        The data fitted.
    summaries : tuple of ParameterSummary
        One per name.
    correlation : numpy.ndarray of float64, shape (3 + S, 3 + S)
        Posterior correlation matrix (from the Hessian covariance for ``mle``).
    best_point : numpy.ndarray of float64, shape (3 + S,)
        The highest-posterior draw for ``mcmc``, the MLE for ``mle``.
    best_counts : numpy.ndarray of float64, shape (S, num_bins)
        Expected counts n_s N_s p_sb at ``best_point``.
    mle : MLEResult
        The maximum-likelihood fit (for ``mcmc`` also the start and whitening of the chains).
    posterior : PosteriorSamples or None
        Draws and diagnostics; ``None`` for ``mle``.
    config : FitConfig
        The settings used.
    truth : numpy.ndarray of float64, shape (3,), or None
        The known point, when given.
    timings : dict of str to float
        Wall seconds of the stages: ``mle``, ``sampling``, ``total``.
    """

    method: str
    names: tuple[str, ...]
    observed: ObservedSpectra
    summaries: tuple[ParameterSummary, ...]
    correlation: np.ndarray
    best_point: np.ndarray
    best_counts: np.ndarray
    mle: MLEResult
    posterior: PosteriorSamples | None
    config: FitConfig
    truth: np.ndarray | None
    timings: dict

    def summary(self, name: str) -> ParameterSummary:
        """Return the summary of parameter ``name``."""
        return self.summaries[self.names.index(name)]


def run_fit(model, spec: DataSpec, observed: ObservedSpectra, config: FitConfig = FitConfig()) -> FitResult:
    """Fit kB, fC, LY and the normalisations to observed spectra.

    Parameters
    ----------
    model : keras.Model
        Regressor made for ``spec``.
    spec : DataSpec
        Parameter box and binning.
    observed : ObservedSpectra
        Counts of the sources present; only they enter the likelihood.
    config : FitConfig
        Method, sampler settings and seed.

    Returns
    -------
    FitResult
    """
    start = time.perf_counter()
    truth = None if config.truth is None else spec.check_point(config.truth)
    if observed.missing:
        logger.warning("sources not in the input, left out of the fit: %s", ", ".join(observed.missing))
    posterior = PosteriorModel(model, spec, observed, config.norm_range)
    mle_seed, _ = tfp.random.split_seed(stateless_seed(config.sampler.seed), n=2, salt="neuromct_tf.mle")
    logger.info(
        "MLE: %d L-BFGS starts on %d sources (%s events in range)",
        config.num_starts, len(observed.sources), f"{int(observed.num_in_range.sum()):,}",
    )
    mle = fit_mle(posterior, mle_seed, num_starts=config.num_starts, jit_compile=config.sampler.jit_compile)
    mle_seconds = time.perf_counter() - start

    samples = None
    if config.method == "mcmc":
        sampler = config.sampler
        logger.info(
            "%s: %d chains, %d burn-in and %d draws each%s",
            sampler.sampler.upper(), sampler.num_chains, sampler.num_burnin_steps, sampler.num_results,
            f", {sampler.num_leapfrog_steps} leapfrog steps per draw" if sampler.sampler == "hmc" else "",
        )
        samples = sample_posterior(posterior, mle, sampler)
        summaries, correlation, best_point = _posterior_summaries(samples, mle, spec)
    else:
        summaries, correlation, best_point = _mle_summaries(mle, spec)
    sampling_seconds = time.perf_counter() - start - mle_seconds

    best_counts = np.exp(posterior.log_rates(**posterior.unpack(tf.constant(best_point[None], tf.float64))).numpy()[0])
    return FitResult(
        method=config.method,
        names=posterior.names,
        observed=observed,
        summaries=summaries,
        correlation=correlation,
        best_point=best_point,
        best_counts=best_counts,
        mle=mle,
        posterior=samples,
        config=config,
        truth=truth,
        timings={"mle": mle_seconds, "sampling": sampling_seconds, "total": time.perf_counter() - start},
    )


def parameter_unit(spec: DataSpec, name: str) -> str:
    """Return the unit of a state entry: the spec's unit for kB, fC and LY, empty for a normalisation."""
    for parameter in spec.parameters:
        if parameter.name == name:
            return parameter.unit
    return ""


def _posterior_summaries(samples: PosteriorSamples, mle: MLEResult, spec: DataSpec):
    draws = samples.flat()
    flat_log_posterior = samples.log_posterior.reshape(-1)
    best_point = draws[int(np.nanargmax(flat_log_posterior))]
    quantiles = np.quantile(draws, [0.025, 0.16, 0.5, 0.84, 0.975], axis=0)
    mean = draws.mean(axis=0)
    std = draws.std(axis=0, ddof=1)
    summaries = tuple(
        ParameterSummary(
            name=name,
            unit=parameter_unit(spec, name),
            mean=float(mean[i]),
            median=float(quantiles[2, i]),
            std=float(std[i]),
            interval68=(float(quantiles[1, i]), float(quantiles[3, i])),
            interval95=(float(quantiles[0, i]), float(quantiles[4, i])),
            map=float(best_point[i]),
            mle=float(mle.point[i]),
            mle_error=float(mle.errors[i]),
        )
        for i, name in enumerate(samples.names)
    )
    return summaries, np.corrcoef(draws, rowvar=False), best_point


def _mle_summaries(mle: MLEResult, spec: DataSpec):
    summaries = tuple(
        ParameterSummary(
            name=name,
            unit=parameter_unit(spec, name),
            mean=float(value),
            median=float(value),
            std=float(error),
            interval68=(float(value - _Z68 * error), float(value + _Z68 * error)),
            interval95=(float(value - _Z95 * error), float(value + _Z95 * error)),
            map=float(value),
            mle=float(value),
            mle_error=float(error),
        )
        for name, value, error in zip(mle.names, mle.point, mle.errors)
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.sqrt(np.diag(mle.covariance))
        correlation = mle.covariance / np.outer(scale, scale)
    if not mle.positive_definite:
        correlation = np.full_like(correlation, np.nan)
    return summaries, correlation, mle.point.copy()
