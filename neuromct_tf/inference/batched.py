"""Maximum-likelihood fits of many datasets at once, batched along a leading dataset dimension.

:func:`~neuromct_tf.inference.mle.fit_mle` fits one dataset. For pull and
coverage studies, :func:`fit_mle_batched` fits D datasets of the same
sources in one graph. The surrogate runs on D x S points per evaluation,
one batched L-BFGS run minimises all D objectives, and one second-order
reverse pass gives the Hessians of all datasets. The statistical model
is that of :class:`~neuromct_tf.inference.model.PosteriorModel`:
lambda_dsb = n_ds N_ds p_sb(kB, fC, LY), with N_ds the in-range count of
source s in dataset d.

The compiled functions take the counts as arguments, so one
:class:`BatchedLikelihood` serves every chunk of datasets without tracing
again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from neuromct_tf.errors import InvalidInputError
from neuromct_tf.inference.mle import invert_hessian
from neuromct_tf.inference.model import DEFAULT_NORM_RANGE, check_norm_range, state_names
from neuromct_tf.models.regressor import logits_model
from neuromct_tf.specs import DataSpec

logger = logging.getLogger(__name__)

# EDM (in -log L) below which an MLE counts as converged, as in fit_mle.
_MAX_EDM = 1e-3

# Fraction of the box, centred on its middle, from which the starts of kB, fC and LY are drawn, as in fit_mle.
_START_FRACTION = 0.6

# Fraction of the box width within which an estimate counts as being at an edge.
_EDGE_MARGIN = 1e-4


@dataclass(frozen=True)
class BatchedMLEResult:
    """Maximum-likelihood estimates of D datasets.

    Attributes
    ----------
    names : tuple of str
        Parameter names, as :func:`~neuromct_tf.inference.model.state_names`.
    points : numpy.ndarray of float64, shape (D, 3 + S)
        Estimates in physical units (kB g/cm2/GeV, fC, LY photons/MeV, norms).
    errors : numpy.ndarray of float64, shape (D, 3 + S)
        sqrt(diag(covariance)); NaN for a dataset whose Hessian is not positive definite.
    covariances : numpy.ndarray of float64, shape (D, 3 + S, 3 + S)
        Inverse Hessians of -log L in the physical parameters.
    negative_log_likelihood : numpy.ndarray of float64, shape (D,)
        -log L at the estimates.
    edm : numpy.ndarray of float64, shape (D,)
        Estimated distance to the minimum, g^T V g / 2 (NaN without a positive-definite Hessian).
    converged : numpy.ndarray of bool, shape (D,)
        Whether the EDM is below 1e-3.
    positive_definite : numpy.ndarray of bool, shape (D,)
        Whether the Hessian is positive definite.
    at_edge : numpy.ndarray of bool, shape (D,)
        Whether kB, fC or LY lies within 1e-4 of the box width from a box edge.
    num_starts : int
        Starts per dataset.
    num_evaluations : int
        Batched evaluations of the objective and of the Hessians, over all rounds.
    """

    names: tuple[str, ...]
    points: np.ndarray
    errors: np.ndarray
    covariances: np.ndarray
    negative_log_likelihood: np.ndarray
    edm: np.ndarray
    converged: np.ndarray
    positive_definite: np.ndarray
    at_edge: np.ndarray
    num_starts: int
    num_evaluations: int


class BatchedLikelihood:
    """Poisson likelihood of D datasets of the same sources, with the surrogate inside.

    Parameters
    ----------
    model : keras.Model
        Regressor made for ``spec``.
    spec : DataSpec
        Gives the parameter box and the binning.
    sources : sequence of str
        Sources of every dataset, in the spec's order.
    norm_range : (float, float)
        Bounds of each normalisation n_s.
    """

    def __init__(self, model, spec: DataSpec, sources, norm_range=DEFAULT_NORM_RANGE):
        low, high = check_norm_range(norm_range)
        self.spec = spec
        self.sources = tuple(sources)
        self.norm_range = (low, high)
        self.names = state_names(self.sources)
        self.num_sources = len(self.sources)
        self.num_params = len(self.names)
        self.num_bins = spec.binning.num_bins
        box = spec.box()
        self.lower = np.concatenate([box[:, 0], np.full(self.num_sources, low)]).astype(np.float64)
        self.upper = np.concatenate([box[:, 1], np.full(self.num_sources, high)]).astype(np.float64)
        self._logits_model = logits_model(model)
        self._source_ids = tf.constant([spec.source_id(s) for s in self.sources], tf.int32)
        self._bijector = tfp.bijectors.Sigmoid(low=tf.constant(self.lower), high=tf.constant(self.upper))

        state_spec = tf.TensorSpec((None, self.num_params), tf.float64)
        counts_spec = tf.TensorSpec((None, self.num_sources, self.num_bins), tf.float64)
        self._objective_fn = tf.function(
            self._objective, autograph=False, input_signature=[state_spec, counts_spec, tf.TensorSpec((None,), tf.float64)]
        )
        self._derivatives_fn = tf.function(self._derivatives, autograph=False, input_signature=[state_spec, counts_spec])

    def log_probabilities(self, physics):
        """Return the surrogate's log bin probabilities log p_sb.

        Parameters
        ----------
        physics : tf.Tensor of float64, shape (..., 3)
            kB (g/cm2/GeV), fC and LY (photons/MeV).

        Returns
        -------
        tf.Tensor of float64, shape (..., S, num_bins)
        """
        physics = tf.convert_to_tensor(physics, tf.float64)
        batch_shape = tf.shape(physics)[:-1]
        points = tf.reshape(physics, (-1, 3))
        num_points = tf.shape(points)[0]
        params = tf.reshape(tf.broadcast_to(points[:, None, :], (num_points, self.num_sources, 3)), (-1, 3))
        sources = tf.tile(self._source_ids, [num_points])
        logits = self._logits_model({"params": tf.cast(params, tf.float32), "source": sources}, training=False)
        log_p = tf.nn.log_softmax(tf.cast(logits, tf.float64), axis=-1)
        return tf.reshape(log_p, tf.concat([batch_shape, [self.num_sources, self.num_bins]], axis=0))

    def poisson_terms(self, state, counts):
        """Return sum_sb (lambda_sb - k_sb log lambda_sb), float64 of shape (...), for states (..., 3 + S).

        It is -log L without the constant sum_sb log k_sb!. ``counts`` (..., S,
        num_bins) broadcasts against the states.
        """
        num_in_range = tf.reduce_sum(counts, axis=-1)
        log_rates = (
            tf.math.log(state[..., 3:] * num_in_range)[..., None] + self.log_probabilities(state[..., :3])
        )
        return tf.reduce_sum(tf.exp(log_rates) - counts * log_rates, axis=[-2, -1])

    def _objective(self, unconstrained, counts, offset):
        # The deviance per event, as in fit_mle: of order 1 whatever the exposure, so that the first
        # L-BFGS step does not saturate the sigmoids.
        num_events = tf.reduce_sum(counts, axis=[-2, -1])
        return tfp.math.value_and_gradient(
            lambda u: (self.poisson_terms(self._bijector.forward(u), counts) - offset) / num_events, unconstrained
        )

    def _derivatives(self, state, counts):
        # Hessians of all D datasets from P copies of every state, shape (P, D, P), as
        # PosteriorModel.nll_derivatives does for one dataset. The gradient at copy k is row k of a (P, P)
        # matrix per dataset. The gradient of the sum of its diagonal with respect to copy k is row k of the Hessian.
        num_params = self.num_params
        copies = tf.tile(state[None], (num_params, 1, 1))
        with tf.GradientTape() as outer:
            outer.watch(copies)
            with tf.GradientTape() as inner:
                inner.watch(copies)
                values = self.poisson_terms(copies, counts[None])
                total = tf.reduce_sum(values)
            gradients = inner.gradient(total, copies)
            diagonal_sum = tf.reduce_sum(tf.linalg.diag_part(tf.transpose(gradients, (1, 0, 2))))
        rows = outer.gradient(diagonal_sum, copies)
        hessians = tf.transpose(rows, (1, 0, 2))
        return values[0], gradients[0], 0.5 * (hessians + tf.linalg.matrix_transpose(hessians))

    def derivatives(self, points: np.ndarray, counts: np.ndarray):
        """Return (-log L without constants, gradient, Hessian) of every dataset at its point.

        Parameters
        ----------
        points : numpy.ndarray of float64, shape (D, 3 + S)
        counts : numpy.ndarray, shape (D, S, num_bins)

        Returns
        -------
        values : numpy.ndarray of float64, shape (D,)
        gradients : numpy.ndarray of float64, shape (D, 3 + S)
        hessians : numpy.ndarray of float64, shape (D, 3 + S, 3 + S)
        """
        values, gradients, hessians = self._derivatives_fn(
            tf.constant(points, tf.float64), tf.constant(counts, tf.float64)
        )
        return values.numpy(), gradients.numpy(), hessians.numpy()

    def draw_starts(self, seeds, num_starts: int) -> np.ndarray:
        """Draw physical starts, float64 of shape (num_starts, D, 3 + S), one seed per dataset.

        Each seed is a non-negative int or a tuple of them, the entropy of a
        :class:`numpy.random.SeedSequence`.

        kB, fC and LY are uniform in the central 60 % of the box and every
        normalisation starts at 1 (clipped into its range), as in
        :func:`~neuromct_tf.inference.mle.draw_starts`. A dataset's starts
        depend only on its own seed, not on the other datasets of the batch.
        """
        lower, upper = self.lower[:3], self.upper[:3]
        margin = 0.5 * (1.0 - _START_FRACTION) * (upper - lower)
        physics = np.stack([
            np.random.default_rng(np.random.SeedSequence(seed)).uniform(lower + margin, upper - margin, (num_starts, 3))
            for seed in seeds
        ], axis=1)
        low, high = self.norm_range
        edge = 1e-3 * (high - low)
        norm_start = min(max(1.0, low + edge), high - edge)
        norms = np.full(physics.shape[:2] + (self.num_sources,), norm_start)
        return np.concatenate([physics, norms], axis=-1)


def fit_mle_batched(
    likelihood: BatchedLikelihood,
    counts: np.ndarray,
    seeds: np.ndarray,
    num_starts: int = 1,
    max_iterations: int = 200,
    max_retries: int = 3,
) -> BatchedMLEResult:
    """Maximise the likelihood of D datasets at once with one batched L-BFGS run.

    As in :func:`~neuromct_tf.inference.mle.fit_mle`, the optimiser works in
    the unconstrained space of the sigmoid bijector, so every step stays
    inside the box. The best start of each dataset is refined by batched
    Newton steps, and its covariance is the inverse Hessian of -log L.

    Parameters
    ----------
    likelihood : BatchedLikelihood
        The statistical model.
    counts : numpy.ndarray of int, shape (D, S, num_bins)
        Entries per bin of every dataset; every source needs entries in range.
    seeds : numpy.ndarray of int, shape (D,)
        Seed of the starts of each dataset (non-negative).
    num_starts : int
        L-BFGS starts per dataset; all D x num_starts run in one batch.
    max_iterations : int
        L-BFGS iteration limit.
    max_retries : int
        Rounds of new starts for the datasets whose EDM is still above 1e-3
        or whose Hessian is not positive definite.

    Returns
    -------
    BatchedMLEResult

    Raises
    ------
    InvalidInputError
        For counts of the wrong shape, a source without entries, or ``num_starts < 1``.
    """
    counts = np.asarray(counts, dtype=np.float64)
    expected_shape = (likelihood.num_sources, likelihood.num_bins)
    if counts.ndim != 3 or counts.shape[1:] != expected_shape or counts.shape[0] < 1:
        raise InvalidInputError(f"counts of shape {counts.shape} do not match (datasets, {expected_shape[0]}, {expected_shape[1]})")
    if np.any(counts.sum(axis=-1) <= 0):
        raise InvalidInputError("a dataset has a source without entries inside the binning; its N_s would be zero")
    if num_starts < 1:
        raise InvalidInputError(f"invalid number of MLE starts {num_starts}; give at least 1")
    num_datasets = counts.shape[0]
    seeds = np.asarray(seeds)
    if seeds.shape != (num_datasets,):
        raise InvalidInputError(f"give one start seed per dataset: {seeds.shape[0] if seeds.ndim else 0} seeds for {num_datasets} datasets")

    points = _minimize(
        likelihood, counts, likelihood.draw_starts([(int(seed), 0) for seed in seeds], num_starts), max_iterations
    )
    points, terms, gradients, hessians, num_evaluations = _polish_batched(likelihood, points, counts)

    # A start can end where the line search fails, away from the optimum. Such datasets are fitted
    # again from new starts, drawn from their seed and the round number, and keep the better optimum.
    for round_index in range(1, max_retries + 1):
        retry = np.flatnonzero(~_is_converged(gradients, hessians))
        if retry.size == 0:
            break
        logger.debug("batched MLE: %d datasets not converged, round %d of new starts", retry.size, round_index)
        retry_seeds = [(int(seed), round_index) for seed in seeds[retry]]
        retry_points = _minimize(likelihood, counts[retry], likelihood.draw_starts(retry_seeds, num_starts), max_iterations)
        retry_points, retry_terms, retry_gradients, retry_hessians, count = _polish_batched(
            likelihood, retry_points, counts[retry]
        )
        num_evaluations += count
        better = retry_terms < terms[retry]
        chosen = retry[better]
        points[chosen], terms[chosen] = retry_points[better], retry_terms[better]
        gradients[chosen], hessians[chosen] = retry_gradients[better], retry_hessians[better]
    log_factorials = tf.math.lgamma(tf.constant(counts + 1.0, tf.float64)).numpy().sum(axis=(1, 2))

    covariances = np.empty_like(hessians)
    errors = np.empty_like(points)
    positive_definite = np.empty(num_datasets, dtype=bool)
    edm = np.full(num_datasets, np.nan)
    for index in range(num_datasets):
        covariances[index], errors[index], positive_definite[index] = invert_hessian(hessians[index])
        if positive_definite[index]:
            edm[index] = 0.5 * gradients[index] @ covariances[index] @ gradients[index]
    fraction = (points[:, :3] - likelihood.lower[:3]) / (likelihood.upper[:3] - likelihood.lower[:3])
    at_edge = np.any((fraction < _EDGE_MARGIN) | (fraction > 1.0 - _EDGE_MARGIN), axis=1)
    converged = np.nan_to_num(edm, nan=np.inf) < _MAX_EDM
    logger.debug(
        "batched MLE of %d datasets x %d starts: %d converged, %d at a box edge",
        num_datasets, num_starts, int(converged.sum()), int(at_edge.sum()),
    )
    return BatchedMLEResult(
        names=likelihood.names,
        points=points,
        errors=errors,
        covariances=covariances,
        negative_log_likelihood=terms + log_factorials,
        edm=edm,
        converged=converged,
        positive_definite=positive_definite,
        at_edge=at_edge,
        num_starts=num_starts,
        num_evaluations=num_evaluations,
    )


def _minimize(likelihood: BatchedLikelihood, counts: np.ndarray, starts: np.ndarray, max_iterations: int) -> np.ndarray:
    """Run one batched L-BFGS over all starts (num_starts, D, 3 + S) and return the best point of each dataset (D, 3 + S)."""
    num_starts, num_datasets = starts.shape[:2]
    # Starts are ordered (start, dataset); counts and offsets are tiled to match.
    tiled_counts = tf.constant(np.tile(counts, (num_starts, 1, 1)), tf.float64)
    positive = np.where(counts > 0, counts, 1.0)
    saturated = np.sum(counts - counts * np.log(positive), axis=(1, 2))
    tiled_offset = tf.constant(np.tile(saturated, num_starts), tf.float64)

    def value_and_gradients(unconstrained):
        return likelihood._objective_fn(unconstrained, tiled_counts, tiled_offset)

    # The L-BFGS loop runs eagerly around the compiled objective, as in fit_mle. The tolerances apply
    # to the per-event deviance, and Newton steps finish the optimum.
    results = tfp.optimizer.lbfgs_minimize(
        value_and_gradients,
        initial_position=likelihood._bijector.inverse(tf.constant(starts.reshape(-1, starts.shape[-1]), tf.float64)),
        max_iterations=max_iterations,
        tolerance=1e-5,
        x_tolerance=1e-6,
        f_relative_tolerance=1e-9,
        num_correction_pairs=10,
    )
    values = results.objective_value.numpy().reshape(num_starts, num_datasets)
    values = np.where(np.isfinite(values), values, np.inf)
    best = np.argmin(values, axis=0)
    positions = likelihood._bijector.forward(results.position).numpy().reshape(num_starts, num_datasets, -1)
    return positions[best, np.arange(num_datasets)]


def _polish_batched(likelihood: BatchedLikelihood, points: np.ndarray, counts: np.ndarray, max_steps: int = 4):
    """Refine L-BFGS optima by Newton steps, per dataset, while its EDM is above 1e-4.

    A step is kept only when it stays inside the box and lowers -log L, as in
    the single-dataset polish of fit_mle. Only the datasets still moving are
    evaluated again. Returns the points, -log L without constants, gradients,
    Hessians and the number of batched evaluations.
    """
    values, gradients, hessians = likelihood.derivatives(points, counts)
    num_evaluations = 1
    active = _needs_step(gradients, hessians)
    for _ in range(max_steps):
        indices = np.flatnonzero(active)
        if indices.size == 0:
            break
        steps = np.linalg.solve(hessians[indices], gradients[indices][..., None])[..., 0]
        candidates = points[indices] - steps
        inside = np.all((candidates > likelihood.lower) & (candidates < likelihood.upper), axis=1)
        active[indices[~inside]] = False
        indices, candidates = indices[inside], candidates[inside]
        if indices.size == 0:
            break
        new_values, new_gradients, new_hessians = likelihood.derivatives(candidates, counts[indices])
        num_evaluations += 1
        better = new_values < values[indices]
        accepted = indices[better]
        points[accepted] = candidates[better]
        values[accepted] = new_values[better]
        gradients[accepted] = new_gradients[better]
        hessians[accepted] = new_hessians[better]
        active[indices[~better]] = False
        active[accepted] = _needs_step(gradients[accepted], hessians[accepted])
    return points, values, gradients, hessians, num_evaluations


def _edm(gradients: np.ndarray, hessians: np.ndarray) -> np.ndarray:
    """Return the EDM g^T H^-1 g / 2 per dataset, NaN where the Hessian is not positive definite."""
    edm = np.full(gradients.shape[0], np.nan)
    for index in range(gradients.shape[0]):
        matrix = hessians[index]
        if np.all(np.isfinite(matrix)) and np.all(np.linalg.eigvalsh(matrix) > 0):
            edm[index] = 0.5 * gradients[index] @ np.linalg.solve(matrix, gradients[index])
    return edm


def _needs_step(gradients: np.ndarray, hessians: np.ndarray) -> np.ndarray:
    """Return, per dataset, whether the Hessian is positive definite and the EDM above 1e-4."""
    return np.nan_to_num(_edm(gradients, hessians), nan=0.0) > 0.1 * _MAX_EDM


def _is_converged(gradients: np.ndarray, hessians: np.ndarray) -> np.ndarray:
    """Return, per dataset, whether the Hessian is positive definite and the EDM below 1e-3."""
    return np.nan_to_num(_edm(gradients, hessians), nan=np.inf) < _MAX_EDM
