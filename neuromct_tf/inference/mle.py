"""Maximum-likelihood fit: batched L-BFGS in the unconstrained space and the Hessian covariance."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from neuromct_tf.inference.model import PosteriorModel

logger = logging.getLogger(__name__)

# EDM (in -log L) below which the MLE counts as converged.
_MAX_EDM = 1e-3

# Fraction of the parameter box, centred on its middle, from which the starts of kB, fC and LY are drawn.
_START_FRACTION = 0.6


@dataclass(frozen=True)
class MLEResult:
    """Maximum-likelihood estimate of all fit parameters.

    Attributes
    ----------
    names : tuple of str
        Parameter names, as :func:`~neuromct_tf.inference.model.state_names`.
    point : numpy.ndarray of float64, shape (3 + S,)
        The estimate, in physical units (kB g/cm2/GeV, fC, LY photons/MeV, norms).
    errors : numpy.ndarray of float64, shape (3 + S,)
        sqrt(diag(covariance)); NaN where the Hessian is not positive definite.
    covariance : numpy.ndarray of float64, shape (3 + S, 3 + S)
        Inverse Hessian of the negative log likelihood in the physical parameters.
    gradient : numpy.ndarray of float64, shape (3 + S,)
        Gradient of the negative log likelihood in the physical parameters (zero at an interior optimum).
    hessian : numpy.ndarray of float64, shape (3 + S, 3 + S)
        Hessian of the negative log likelihood in the physical parameters.
    unconstrained_point : numpy.ndarray of float64, shape (3 + S,)
        The estimate mapped to the optimiser's unconstrained space.
    negative_log_likelihood : float
        -log L at the estimate.
    edm : float
        Estimated distance to the minimum, g^T V g / 2 with g the gradient of
        -log L and V the covariance: the drop of -log L still expected from a
        Newton step (as MINUIT reports it). NaN without a positive-definite Hessian.
    converged : bool
        Whether the EDM is below 1e-3, a small fraction of the 0.5 change of
        -log L that defines a 1-sigma error.
    num_starts : int
        Starts optimised in one batch.
    num_iterations : int
        L-BFGS iterations of the batch.
    num_evaluations : int
        Likelihood and gradient evaluations of the batch.
    positive_definite : bool
        Whether the Hessian is positive definite, so that the covariance is meaningful.
    """

    names: tuple[str, ...]
    point: np.ndarray
    errors: np.ndarray
    covariance: np.ndarray
    gradient: np.ndarray
    hessian: np.ndarray
    unconstrained_point: np.ndarray
    negative_log_likelihood: float
    edm: float
    converged: bool
    num_starts: int
    num_iterations: int
    num_evaluations: int
    positive_definite: bool


def draw_starts(posterior: PosteriorModel, num_starts: int, seed) -> tf.Tensor:
    """Draw unconstrained starts, float64 of shape (num_starts, 3 + S).

    kB, fC and LY are uniform in the central 60 % of the box; every
    normalisation starts at 1 (clipped into its range), its maximum-likelihood
    value, since N_s is the observed count.
    """
    lower, upper = posterior.lower[:3], posterior.upper[:3]
    margin = 0.5 * (1.0 - _START_FRACTION) * (upper - lower)
    physics = tf.random.stateless_uniform(
        (num_starts, 3), seed=seed, minval=lower + margin, maxval=upper - margin, dtype=tf.float64
    )
    norm_low, norm_high = posterior.norm_range
    # Keep the start off the exact box edges, where the sigmoid's inverse is infinite.
    margin = 1e-3 * (norm_high - norm_low)
    norm_start = min(max(1.0, norm_low + margin), norm_high - margin)
    norms = tf.fill((num_starts, posterior.num_sources), tf.constant(norm_start, tf.float64))
    return posterior.constraining_bijector().inverse(tf.concat([physics, norms], axis=1))


def fit_mle(
    posterior: PosteriorModel,
    seed,
    num_starts: int = 6,
    max_iterations: int = 100,
    jit_compile: bool = False,
) -> MLEResult:
    """Maximise the likelihood from several starts in one batched L-BFGS run.

    The optimiser works on u = sigmoid^-1((theta - low) / (high - low)), so
    every step stays inside the prior box; the best start is kept and
    refined by Newton steps. The covariance is the inverse Hessian of -log L
    in theta, by automatic differentiation at the best point.

    Parameters
    ----------
    posterior : PosteriorModel
        The statistical model.
    seed : tf.Tensor of int32, shape (2,)
        Stateless seed of the starts.
    num_starts : int
        Starts of the batch.
    max_iterations : int
        L-BFGS iteration limit.
    jit_compile : bool
        Compile the optimisation with XLA.

    Returns
    -------
    MLEResult
    """
    bijector = posterior.constraining_bijector()
    starts = draw_starts(posterior, num_starts, seed)

    # The objective is the deviance per event, (log L_saturated - log L) / sum_s N_s: the same optimum
    # as -log L, but of order 1 with gradients of order 1 in u. With the raw -log L (~1e5 for 5 x 10k
    # events) the first L-BFGS step, scaled by the gradient, saturates every sigmoid and the line
    # search fails.
    counts = posterior.observed.counts.astype(np.float64)
    positive = counts > 0
    saturated = float(np.sum(counts[positive] * np.log(counts[positive])) - counts.sum() - np.sum(_log_factorial(counts)))
    num_events = float(counts.sum())

    @tf.function(
        autograph=False, jit_compile=jit_compile,
        input_signature=[tf.TensorSpec((num_starts, posterior.num_params), tf.float64)],
    )
    def value_and_gradients(unconstrained):
        return tfp.math.value_and_gradient(
            lambda u: (saturated - posterior.log_likelihood(bijector.forward(u))) / num_events, unconstrained
        )

    # The L-BFGS loop runs eagerly around the compiled objective. As one tf.function, its first call
    # spent 5 to 15 s optimising the graph of the line search on 2 CPU cores, against about 2 s eagerly.
    # The tolerances apply to the per-event objective. Newton steps in _polish finish the optimum,
    # since the float32 surrogate makes -log L rough at about 1e-3.
    results = tfp.optimizer.lbfgs_minimize(
        value_and_gradients,
        initial_position=starts,
        max_iterations=max_iterations,
        tolerance=1e-5,
        x_tolerance=1e-6,
        f_relative_tolerance=1e-9,
        num_correction_pairs=10,
    )
    values = results.objective_value.numpy() * num_events - saturated
    values = np.where(np.isfinite(values), values, np.inf)
    best = int(np.argmin(values))
    finite = values[np.isfinite(values)]
    if finite.size:
        logger.debug("MLE starts: -log L from %.3f to %.3f", finite.min(), finite.max())
    point = bijector.forward(results.position[best]).numpy()
    point, value, gradient, nll_hessian, edm, num_newton = _polish(posterior, point)

    covariance, errors, positive_definite = invert_hessian(nll_hessian)
    at_edge = edge_parameters(posterior, point)
    if at_edge:
        logger.warning(
            "the MLE of %s is at the edge of the prior box; the likelihood may prefer values outside it, "
            "and Hessian errors do not describe a bounded parameter (the posterior intervals do)",
            ", ".join(at_edge),
        )
    elif not positive_definite:
        logger.warning(
            "the Hessian of -log L at the MLE is not positive definite (a parameter the data do not "
            "constrain); its uncertainties are reported as NaN"
        )
    converged = bool(edm < _MAX_EDM)
    if positive_definite and not converged and not at_edge:
        logger.warning("the MLE stopped with an estimated distance to the minimum of %.3g in -log L; it may be inaccurate", edm)
    return MLEResult(
        names=posterior.names,
        point=point,
        errors=errors,
        covariance=covariance,
        gradient=gradient,
        hessian=nll_hessian,
        unconstrained_point=bijector.inverse(tf.constant(point, tf.float64)).numpy(),
        negative_log_likelihood=value,
        edm=edm,
        converged=converged,
        num_starts=num_starts,
        num_iterations=int(results.num_iterations.numpy()),
        num_evaluations=int(results.num_objective_evaluations.numpy()) + num_newton,
        positive_definite=positive_definite,
    )


def _polish(posterior: PosteriorModel, point: np.ndarray, max_steps: int = 4):
    """Refine an L-BFGS optimum by Newton steps inside the box while the EDM is above 1e-4.

    L-BFGS's line search stops on the float32 roughness of the surrogate
    before the last digits of the optimum; Newton steps with the exact Hessian
    finish the job in one or two evaluations. Returns the point, -log L, its
    gradient and Hessian, the EDM and the number of Newton evaluations.
    """
    value, gradient, matrix = posterior.nll_derivatives(point)
    edm = _edm(gradient, matrix)
    num_steps = 0
    while num_steps < max_steps and np.isfinite(edm) and edm > 0.1 * _MAX_EDM:
        candidate = point - np.linalg.solve(matrix, gradient)
        if not np.all((candidate > posterior.lower) & (candidate < posterior.upper)):
            break
        num_steps += 1
        new_value, new_gradient, new_matrix = posterior.nll_derivatives(candidate)
        if not new_value < value:
            break
        point, value, gradient, matrix = candidate, new_value, new_gradient, new_matrix
        edm = _edm(gradient, matrix)
    return point, value, gradient, matrix, float(edm), num_steps


def edge_parameters(posterior: PosteriorModel, point: np.ndarray, margin: float = 1e-4) -> list[str]:
    """Return the names of the parameters within ``margin`` (a fraction of the box width) of a box edge."""
    fraction = (point - posterior.lower) / (posterior.upper - posterior.lower)
    return [name for name, value in zip(posterior.names, fraction) if value < margin or value > 1.0 - margin]


def _log_factorial(counts: np.ndarray) -> np.ndarray:
    return tf.math.lgamma(tf.constant(counts + 1.0, tf.float64)).numpy()


def _edm(gradient: np.ndarray, matrix: np.ndarray) -> float:
    if not np.all(np.linalg.eigvalsh(matrix) > 0):
        return float("nan")
    return float(0.5 * gradient @ np.linalg.solve(matrix, gradient))


def invert_hessian(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Return ``(covariance, errors, positive_definite)`` for a Hessian of -log L.

    When the Hessian is not positive definite, the covariance is the
    pseudo-inverse and the errors are NaN.
    """
    eigenvalues = np.linalg.eigvalsh(matrix)
    positive_definite = bool(np.all(eigenvalues > 0) and np.all(np.isfinite(matrix)))
    if positive_definite:
        covariance = np.linalg.inv(matrix)
        covariance = 0.5 * (covariance + covariance.T)
        errors = np.sqrt(np.diag(covariance))
    else:
        covariance = np.linalg.pinv(np.nan_to_num(matrix))
        errors = np.full(matrix.shape[0], np.nan)
    return covariance, errors, positive_definite
