"""Bias, resolution, pulls and interval coverage of many fits with a known truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuromct_tf.specs.model import PARAMETER_NAMES

# Half-widths, in standard deviations, of the central 68.27 % and 95 % intervals of a normal distribution.
Z68 = 0.994457883
Z95 = 1.959963985

# Standard error of the median of a normal sample is sqrt(pi / 2) sigma / sqrt(N).
_MEDIAN_ERROR_FACTOR = np.sqrt(np.pi / 2.0)


@dataclass(frozen=True)
class ParameterStatistics:
    """Statistics of one parameter over the fits of many pseudo-datasets with the same truth.

    The pull of a dataset is (MLE - truth) / sigma with sigma its Hessian
    error, and an interval is MLE -+ z sigma. Errors are standard errors of
    the statistic: sqrt(pi/2) s / sqrt(N) for a median, s / sqrt(N) for a
    mean, s / sqrt(2 (N - 1)) for a width and sqrt(c (1 - c) / N) for a
    coverage c.

    Attributes
    ----------
    name : str
        ``kB``, ``fC`` or ``LY``.
    truth : float
        True value, in the parameter's unit.
    num_datasets : int
        Fits with a positive-definite Hessian, the ones counted below.
    median_bias, median_bias_error : float
        Median of MLE - truth, in the parameter's unit.
    spread : float
        Standard deviation of the MLEs (the estimator's resolution), in the parameter's unit.
    median_sigma : float
        Median Hessian error, in the parameter's unit.
    bias_in_sigma : float
        median_bias / median_sigma.
    pull_mean, pull_mean_error, pull_width, pull_width_error : float
        Mean and standard deviation of the pulls.
    coverage68, coverage68_error, coverage95, coverage95_error : float
        Fractions of datasets whose 68.27 % or 95 % interval contains the truth.
    crb : float
        Cramér–Rao bound of the surrogate's likelihood at the truth (NaN if not computed).
    spread_over_crb : float
        spread / crb: 1 for an efficient unbiased estimator.
    sigma_over_crb : float
        median_sigma / crb.
    """

    name: str
    truth: float
    num_datasets: int
    median_bias: float
    median_bias_error: float
    spread: float
    median_sigma: float
    bias_in_sigma: float
    pull_mean: float
    pull_mean_error: float
    pull_width: float
    pull_width_error: float
    coverage68: float
    coverage68_error: float
    coverage95: float
    coverage95_error: float
    crb: float
    spread_over_crb: float
    sigma_over_crb: float


def parameter_statistics(estimates, errors, valid, truth, crb=None) -> tuple[ParameterStatistics, ...]:
    """Compute :class:`ParameterStatistics` of kB, fC and LY.

    Parameters
    ----------
    estimates, errors : numpy.ndarray of float64, shape (D, 3)
        MLEs and Hessian errors of kB, fC and LY.
    valid : numpy.ndarray of bool, shape (D,)
        Fits that count (positive-definite Hessian).
    truth : sequence of 3 float
        True kB, fC and LY.
    crb : sequence of 3 float, optional
        Cramér–Rao bounds at the truth.

    Returns
    -------
    tuple of 3 ParameterStatistics
        Statistics of a parameter with fewer than 2 valid fits are NaN.
    """
    estimates = np.asarray(estimates, dtype=np.float64)
    errors = np.asarray(errors, dtype=np.float64)
    crb = np.full(3, np.nan) if crb is None else np.asarray(crb, dtype=np.float64)
    statistics = []
    for index, name in enumerate(PARAMETER_NAMES):
        keep = np.asarray(valid, bool) & np.isfinite(estimates[:, index]) & np.isfinite(errors[:, index]) & (errors[:, index] > 0)
        statistics.append(_one_parameter(name, estimates[keep, index], errors[keep, index], float(truth[index]), float(crb[index])))
    return tuple(statistics)


def _one_parameter(name: str, estimate: np.ndarray, sigma: np.ndarray, truth: float, crb: float) -> ParameterStatistics:
    count = estimate.size
    if count < 2:
        nan = float("nan")
        return ParameterStatistics(name, truth, count, *([nan] * 16))
    deviation = estimate - truth
    pulls = deviation / sigma
    spread = float(deviation.std(ddof=1))
    median_sigma = float(np.median(sigma))
    median_bias = float(np.median(deviation))
    pull_width = float(pulls.std(ddof=1))
    coverage68 = float(np.mean(np.abs(pulls) < Z68))
    coverage95 = float(np.mean(np.abs(pulls) < Z95))
    return ParameterStatistics(
        name=name,
        truth=truth,
        num_datasets=count,
        median_bias=median_bias,
        median_bias_error=float(_MEDIAN_ERROR_FACTOR * spread / np.sqrt(count)),
        spread=spread,
        median_sigma=median_sigma,
        bias_in_sigma=median_bias / median_sigma,
        pull_mean=float(pulls.mean()),
        pull_mean_error=float(pull_width / np.sqrt(count)),
        pull_width=pull_width,
        pull_width_error=float(pull_width / np.sqrt(2 * (count - 1))),
        coverage68=coverage68,
        coverage68_error=float(np.sqrt(coverage68 * (1 - coverage68) / count)),
        coverage95=coverage95,
        coverage95_error=float(np.sqrt(coverage95 * (1 - coverage95) / count)),
        crb=crb,
        spread_over_crb=spread / crb,
        sigma_over_crb=median_sigma / crb,
    )
