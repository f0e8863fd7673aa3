"""Fisher information of the binned Poisson likelihood and the Cramér–Rao bound on kB, fC and LY.

With expected counts lambda_sb = n_s nu_s p_sb(kB, fC, LY) of source s in
bin b (nu_s the expected in-range entries, n_s = 1 at the truth), the Fisher
information of independent Poisson bins is

    I_ij = sum_sb (d lambda_sb / d theta_i) (d lambda_sb / d theta_j) / lambda_sb

over theta = (kB, fC, LY, n_1, ..., n_S). The normalisations are nuisance
parameters: the bound on kB, fC and LY is the square root of the diagonal of
the physics block of I^-1 (Cramér 1946, Rao 1945), which includes the loss
from not knowing the n_s. Because the surrogate's probabilities sum to one
over the binning, the cross terms between a normalisation and kB, fC or LY
vanish, and the bound equals that of the multinomial shape alone.

Three estimates of I are available:

- :func:`surrogate_fisher`: derivatives of the surrogate by forward-mode
  automatic differentiation.
- :func:`surrogate_fisher_differences`: central finite differences of the
  surrogate, with given steps.
- :func:`simulation_fisher`: central finite differences, with the same
  steps, of spectra of the reference simulation
  (:func:`simulate_fisher_spectra`). Each of two independent replicas
  evaluates the same decays at all shifted points, so the transport, which
  does not depend on kB, fC and LY, cancels in the differences, and the
  photo-detection stage is integrated analytically. The product of the two
  replicas' differences is an unbiased estimate of the squared derivative,
  where the square of one replica's difference would add its noise variance.

Comparing the last two, on the same bins and steps, tests the surrogate's
derivatives against the simulation's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from neuromct_tf.errors import InvalidInputError
from neuromct_tf.inference.batched import BatchedLikelihood
from neuromct_tf.specs import DataSpec
from neuromct_tf.validation.pseudodata import SimulationPool

#: Entries that a bin of the central simulated spectrum (both replicas) needs to enter the simulation's
#: Fisher information. Below it, the estimate of 1/lambda from the spectrum itself is biased upwards.
MIN_REFERENCE_ENTRIES = 50


@dataclass(frozen=True)
class FisherInformation:
    """Fisher information at one or more true points and the Cramér–Rao bounds.

    Attributes
    ----------
    names : tuple of str
        ``kB``, ``fC``, ``LY``, then ``norm_SOURCE`` per source.
    information : numpy.ndarray of float64, shape (..., 3 + S, 3 + S)
        The Fisher information I for the expected counts.
    expected_counts : numpy.ndarray of float64, shape (..., S)
        Expected in-range entries nu_s per source.
    crb : numpy.ndarray of float64, shape (..., 3)
        Cramér–Rao bound on kB (g/cm2/GeV), fC and LY (photons/MeV) with the
        normalisations profiled: sqrt of the diagonal of the physics block of I^-1.
    """

    names: tuple[str, ...]
    information: np.ndarray
    expected_counts: np.ndarray
    crb: np.ndarray


def fisher_from_derivatives(
    names, probabilities: np.ndarray, derivatives: np.ndarray, expected_counts: np.ndarray, mask=None
) -> FisherInformation:
    """Assemble I from p_sb and d p_sb / d theta for kB, fC and LY.

    Parameters
    ----------
    names : tuple of str
        State names (3 + S).
    probabilities : numpy.ndarray, shape (..., S, num_bins)
        p_sb at the true point.
    derivatives : numpy.ndarray, shape (..., 3, S, num_bins)
        d p_sb / d theta_i for kB, fC and LY; for an unbiased estimate from two
        replicas, pass the pair as shape (2, ..., 3, S, num_bins).
    expected_counts : numpy.ndarray, shape (..., S)
        nu_s.
    mask : numpy.ndarray of bool, shape (..., S, num_bins), optional
        Bins that enter the sum; all bins with p_sb > 0 by default.

    Returns
    -------
    FisherInformation
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    expected_counts = np.asarray(expected_counts, dtype=np.float64)
    derivatives = np.asarray(derivatives, dtype=np.float64)
    paired = derivatives.ndim == probabilities.ndim + 2
    first, second = (derivatives[0], derivatives[1]) if paired else (derivatives, derivatives)
    keep = probabilities > 0 if mask is None else (np.asarray(mask) & (probabilities > 0))
    inverse_p = np.where(keep, 1.0 / np.where(keep, probabilities, 1.0), 0.0)
    num_sources = probabilities.shape[-2]
    batch_shape = probabilities.shape[:-2]

    # With lambda = n nu p at n = 1: d lambda / d theta_i = nu dp_i and d lambda / d n_s = nu p.
    information = np.zeros(batch_shape + (3 + num_sources, 3 + num_sources))
    nu = expected_counts[..., None, :, None]
    physics = np.einsum("...isb,...jsb->...ij", nu * first * inverse_p[..., None, :, :], second)
    information[..., :3, :3] = 0.5 * (physics + np.swapaxes(physics, -1, -2))
    mixed = 0.5 * np.einsum("...isb->...is", nu * (first + second) * keep[..., None, :, :])
    information[..., :3, 3:] = mixed
    information[..., 3:, :3] = np.swapaxes(mixed, -1, -2)
    norm_diagonal = expected_counts * np.sum(probabilities * keep, axis=-1)
    information[..., 3:, 3:] = norm_diagonal[..., :, None] * np.eye(num_sources)
    return FisherInformation(
        names=tuple(names), information=information, expected_counts=expected_counts, crb=cramer_rao_bound(information)
    )


def cramer_rao_bound(information: np.ndarray) -> np.ndarray:
    """Return sqrt(diag((I^-1)_physics)), shape (..., 3); NaN where I is not positive definite."""
    information = np.asarray(information, dtype=np.float64)
    flat = information.reshape((-1,) + information.shape[-2:])
    bounds = np.full((flat.shape[0], 3), np.nan)
    for index, matrix in enumerate(flat):
        if np.all(np.isfinite(matrix)) and np.all(np.linalg.eigvalsh(matrix) > 0):
            bounds[index] = np.sqrt(np.diag(np.linalg.inv(matrix))[:3])
    return bounds.reshape(information.shape[:-2] + (3,))


def surrogate_probabilities(likelihood: BatchedLikelihood, points: np.ndarray) -> np.ndarray:
    """Return the surrogate's p_sb, float64 of shape (K, S, num_bins), at points (K, 3)."""
    return np.exp(likelihood.log_probabilities(tf.constant(np.asarray(points, np.float64).reshape(-1, 3))).numpy())


def surrogate_fisher(likelihood: BatchedLikelihood, points: np.ndarray, expected_counts: np.ndarray) -> FisherInformation:
    """Compute I at each point from the surrogate, with derivatives by forward-mode autodiff.

    Parameters
    ----------
    likelihood : BatchedLikelihood
        Holds the surrogate and the sources.
    points : numpy.ndarray, shape (K, 3)
        True (kB, fC, LY).
    expected_counts : numpy.ndarray, shape (K, S) or (S,)
        Expected in-range entries per source.

    Returns
    -------
    FisherInformation
        With leading dimension K.
    """
    probabilities, derivatives = surrogate_derivatives(likelihood, points)
    counts = np.broadcast_to(np.asarray(expected_counts, np.float64), (probabilities.shape[0], likelihood.num_sources))
    return fisher_from_derivatives(likelihood.names, probabilities, derivatives, counts)


def surrogate_derivatives(likelihood: BatchedLikelihood, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return p_sb, shape (K, S, num_bins), and d p_sb / d theta, shape (K, 3, S, num_bins), at points (K, 3).

    The derivatives come from forward-mode autodiff of the surrogate.
    """
    physics = tf.constant(np.asarray(points, np.float64).reshape(-1, 3))
    derivatives = []
    # One forward-mode pass per parameter: three surrogate evaluations, where the reverse mode
    # would need one per bin and source.
    for index in range(3):
        tangent = tf.one_hot(tf.fill(tf.shape(physics)[:1], index), 3, dtype=tf.float64)
        with tf.autodiff.ForwardAccumulator(physics, tangent) as accumulator:
            probabilities = tf.exp(likelihood.log_probabilities(physics))
        derivatives.append(accumulator.jvp(probabilities).numpy())
    return probabilities.numpy(), np.stack(derivatives, axis=1)


def default_steps(spec: DataSpec) -> np.ndarray:
    """Return the finite-difference steps of kB, fC and LY: 1 % of each box width.

    With the bundled regressor at the nominal point, the Cramér–Rao bounds from
    central differences with these steps agree with the autodiff ones within
    0.3 %. With steps of 5 % they are 35 to 45 % too small, because a step in
    LY then shifts the full-energy peaks by about their width.
    """
    box = spec.box()
    return 0.01 * (box[:, 1] - box[:, 0])


def shifted_points(point: Sequence[float], steps: np.ndarray) -> np.ndarray:
    """Return the points (3, 2, 3) theta -+ h_i e_i of the central differences."""
    point = np.asarray(point, np.float64)
    shifts = np.eye(3) * np.asarray(steps, np.float64)[:, None]
    return np.stack([point - shifts, point + shifts], axis=1)


def surrogate_fisher_differences(
    likelihood: BatchedLikelihood, point: Sequence[float], expected_counts: np.ndarray, steps: np.ndarray, mask=None
) -> FisherInformation:
    """Compute I at one point from central differences of the surrogate with ``steps`` (3,)."""
    shifted = surrogate_probabilities(likelihood, shifted_points(point, steps).reshape(-1, 3)).reshape(
        3, 2, likelihood.num_sources, -1
    )
    derivatives = (shifted[:, 1] - shifted[:, 0]) / (2.0 * np.asarray(steps)[:, None, None])
    probabilities = surrogate_probabilities(likelihood, np.asarray(point)[None])[0]
    return fisher_from_derivatives(likelihood.names, probabilities, derivatives, expected_counts, mask)


@dataclass(frozen=True)
class SimulatedSpectra:
    """Smooth high-statistics spectra of the reference simulation for the finite-difference Fisher information.

    Attributes
    ----------
    central : numpy.ndarray of float64, shape (2, S, num_bins)
        Bin probabilities at the true point, per replica, normalised inside the binning.
    shifted : numpy.ndarray of float64, shape (2, 3, 2, S, num_bins)
        Bin probabilities per replica, parameter and side (theta - h, theta + h).
    in_range : numpy.ndarray of float64, shape (2, S)
        Expected in-range triggers of the central spectrum per replica.
    steps : numpy.ndarray of float64, shape (3,)
        Steps h of kB, fC and LY.
    num_events : int
        Decays per source and replica.
    """

    central: np.ndarray
    shifted: np.ndarray
    in_range: np.ndarray
    steps: np.ndarray
    num_events: int

    def mask(self) -> np.ndarray:
        """Return the bins, bool of shape (S, num_bins), with at least :data:`MIN_REFERENCE_ENTRIES` expected central entries."""
        expected = (self.central * self.in_range[..., None]).sum(axis=0)
        return expected >= MIN_REFERENCE_ENTRIES


@dataclass(frozen=True)
class _SpectraTask:
    source: str
    source_id: int
    points: tuple[tuple[float, float, float], ...]
    num_events: int
    seed: int
    stream: str
    edges: tuple[float, ...]


# Half-width, in standard deviations, of the window in which a trigger's charge distribution is integrated.
_WINDOW_SIGMAS = 8.0

# Triggers per block of the integration, which bounds its memory to about block x window x 8 bytes.
_BLOCK_TRIGGERS = 20_000


def _smooth_spectra(task: _SpectraTask) -> tuple[np.ndarray, np.ndarray]:
    """Return the expected entries per bin (P, num_bins) and in range (P,) of one source at P points.

    The decays and their deposits come from the reference simulation, shared by
    all points. The photo-detection stage is integrated analytically: the
    charge of a trigger with mean photo-electron count m = epsilon mu is
    normal with the mean m and the variance of the simulated charge,
    m (1 + s^2) (1 + c^2) + c^2 m^2. Its Poisson skewness, 1 / sqrt(m), is
    below 6 % for the ~300 photo-electrons of the lowest triggers in the
    binning. The spectra are then smooth in kB, fC and LY, and their
    differences carry only the sampling noise of the deposits.
    """
    from neuromct_tf.sim.detection import DEFAULT_RESPONSE
    from neuromct_tf.sim.light import LightModel
    from neuromct_tf.sim.runner import CHUNK_EVENTS, random_stream
    from neuromct_tf.sim.sources import simulate_deposits

    edges = np.asarray(task.edges)
    response = DEFAULT_RESPONSE
    light = LightModel.default()
    entries = np.zeros((len(task.points), edges.size - 1))
    for chunk, start in enumerate(range(0, task.num_events, CHUNK_EVENTS)):
        size = min(CHUNK_EVENTS, task.num_events - start)
        deposits = simulate_deposits(task.source, size, random_stream(task.seed, task.stream, 0, task.source_id, chunk))
        for index, point in enumerate(task.points):
            mean = response.detection_efficiency * light.mean_photons(deposits, *point)
            variance = (
                mean * (1.0 + response.spe_resolution**2) * (1.0 + response.constant_term**2)
                + (response.constant_term * mean) ** 2
            )
            # In kNPE, as the binning.
            entries[index] += _integrate_normal(1e-3 * mean, 1e-3 * np.sqrt(variance), edges)
    return entries, entries.sum(axis=1)


def _integrate_normal(means: np.ndarray, sigmas: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Return sum_i P(x_i in bin b) for x_i ~ Normal(means_i, sigmas_i), shape (num_bins,)."""
    from scipy.special import ndtr

    num_bins = edges.size - 1
    totals = np.zeros(num_bins)
    keep = (means + _WINDOW_SIGMAS * sigmas > edges[0]) & (means - _WINDOW_SIGMAS * sigmas < edges[-1]) & (sigmas > 0)
    means, sigmas = means[keep], sigmas[keep]
    for start in range(0, means.size, _BLOCK_TRIGGERS):
        mean, sigma = means[start:start + _BLOCK_TRIGGERS], sigmas[start:start + _BLOCK_TRIGGERS]
        low = np.searchsorted(edges, mean - _WINDOW_SIGMAS * sigma, side="right") - 1
        high = np.searchsorted(edges, mean + _WINDOW_SIGMAS * sigma, side="left")
        low = np.clip(low, 0, num_bins)
        width = int(np.max(high - low)) + 1
        # Edge indices of each trigger's window, clipped at the last edge; a repeated edge adds zero.
        indices = np.minimum(low[:, None] + np.arange(width + 1), num_bins)
        cdf = ndtr((edges[indices] - mean[:, None]) / sigma[:, None])
        bins = np.minimum(indices[:, :-1], num_bins - 1)
        totals += np.bincount(bins.ravel(), weights=np.diff(cdf, axis=1).ravel(), minlength=num_bins)
    return totals


def simulate_fisher_spectra(
    spec: DataSpec,
    point: Sequence[float],
    num_events: int,
    seed: int,
    pool: SimulationPool,
    steps: np.ndarray | None = None,
) -> SimulatedSpectra:
    """Simulate every source and compute its smooth spectra at the point and at theta -+ h_i e_i, in two replicas.

    Within a replica all seven points share the decays (dataset index 0 of
    stream ``fisher_REPLICA``), so the differences carry no noise of the
    transport. ``num_events`` decays per source and replica make 2 S
    ``num_events`` decays in all; each is then evaluated at the seven points.

    Raises
    ------
    InvalidInputError
        If ``num_events`` is not positive or a shifted point leaves the box.
    """
    if num_events <= 0:
        raise InvalidInputError(f"invalid number of Fisher events {num_events}; give a positive number")
    steps = default_steps(spec) if steps is None else np.asarray(steps, np.float64)
    shifted_grid = shifted_points(point, steps)
    for shifted in shifted_grid.reshape(-1, 3):
        spec.check_point(shifted)
    points = tuple(tuple(float(v) for v in values) for values in [np.asarray(point, np.float64), *shifted_grid.reshape(-1, 3)])
    edges = tuple(float(v) for v in spec.binning.edges_array())
    tasks = [
        _SpectraTask(name, spec.source_id(name), points, int(num_events), int(seed), f"fisher_{replica}", edges)
        for replica in range(2)
        for name in spec.sources
    ]
    num_sources = len(spec.sources)
    results = list(pool.map_function(_smooth_spectra, tasks))
    entries = np.stack([result[0] for result in results]).reshape(2, num_sources, len(points), -1)
    in_range = np.stack([result[1] for result in results]).reshape(2, num_sources, len(points))
    probabilities = entries / in_range[..., None]
    # (replica, source, point, bin) -> central (replica, source, bin) and shifted (replica, parameter, side, source, bin).
    central = probabilities[:, :, 0]
    shifted = probabilities[:, :, 1:].reshape(2, num_sources, 3, 2, -1).transpose(0, 2, 3, 1, 4)
    return SimulatedSpectra(central=central, shifted=shifted, in_range=in_range[:, :, 0], steps=steps, num_events=int(num_events))


def simulation_fisher(names, spectra: SimulatedSpectra, expected_counts: np.ndarray) -> FisherInformation:
    """Compute I from the simulated spectra, on the bins of :meth:`SimulatedSpectra.mask`.

    p_sb is the mean of the two central spectra; each replica gives its own
    central differences, and their product enters the sum.
    """
    probabilities = spectra.central.mean(axis=0)
    derivatives = (spectra.shifted[:, :, 1] - spectra.shifted[:, :, 0]) / (2.0 * spectra.steps[None, :, None, None])
    return fisher_from_derivatives(names, probabilities, derivatives, expected_counts, spectra.mask())
