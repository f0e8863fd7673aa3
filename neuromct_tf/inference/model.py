"""The statistical model of the fit: priors, Poisson likelihood and the parameter state.

The state of one chain (or one optimiser start) is a float64 vector of
length ``3 + S``: kB, fC, LY, then one normalisation per observed source, in
the spec's source order. Batches of states have shape (..., 3 + S).

With observed counts k_sb of source s in bin b, N_s = sum_b k_sb in range,
and p_sb(kB, fC, LY) the surrogate's bin probabilities, the expected counts
are lambda_sb = n_s N_s p_sb and

    log L = sum_s sum_b [k_sb log lambda_sb - lambda_sb - log k_sb!].

The surrogate runs in float32, as it was trained; its logits are cast to
float64 before the log-softmax, and the likelihood, priors and sampler state
are float64. A float32 sum of the ~4000 Poisson terms of 5 x 10k events
(each up to ~1e5 in size) rounds at the 0.01 to 0.1 level, which is as large
as the energy errors that decide HMC acceptance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from neuromct_tf.errors import InvalidInputError
from neuromct_tf.io.calib import CalibrationData
from neuromct_tf.models.surrogate import surrogate_logits_model
from neuromct_tf.specs import DataSpec
from neuromct_tf.specs.model import PARAMETER_NAMES

tfd = tfp.distributions
tfb = tfp.bijectors

#: Default prior range of every normalisation n_s.
DEFAULT_NORM_RANGE = (0.8, 1.2)


@dataclass(frozen=True)
class ObservedSpectra:
    """Binned counts of the sources that enter the fit.

    Attributes
    ----------
    sources : tuple of str
        Source names, in the spec's order.
    source_ids : numpy.ndarray of int32, shape (S,)
        Spec source id of each source (the surrogate's ``source`` input).
    counts : numpy.ndarray of int64, shape (S, num_bins)
        Entries per bin in the spec's binning.
    num_underflow, num_overflow : numpy.ndarray of int64, shape (S,)
        Entries below and above the binning; they do not enter the likelihood.
    missing : tuple of str
        Spec sources absent from the input.
    files : tuple of str
        File read for each source (empty for data made in memory).
    objects : tuple of str
        TTree or TH1 read for each source (empty for data made in memory).
    """

    sources: tuple[str, ...]
    source_ids: np.ndarray
    counts: np.ndarray
    num_underflow: np.ndarray
    num_overflow: np.ndarray
    missing: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    objects: tuple[str, ...] = ()

    @property
    def num_in_range(self) -> np.ndarray:
        """Entries inside the binning per source, int64 of shape (S,): the N_s of the likelihood."""
        return self.counts.sum(axis=1)

    @classmethod
    def from_calibration(cls, data: CalibrationData, spec: DataSpec) -> ObservedSpectra:
        """Collect the counts read by :func:`~neuromct_tf.io.calib.read_calibration`.

        Raises
        ------
        InvalidInputError
            If a source has no entries inside the binning, since its normalisation
            N_s would be zero.
        """
        empty = [s for s in data.sources if int(s.counts.sum()) == 0]
        if empty:
            details = ", ".join(
                f"{s.source} in {s.path} ({s.num_underflow} below and {s.num_overflow} above the range)"
                for s in empty
            )
            raise InvalidInputError(
                f"no entries inside {spec.binning.describe()} for {details}; remove the source "
                "or check the NPE unit (--npe-unit)"
            )
        return cls(
            sources=data.source_names,
            source_ids=np.array([spec.source_id(s) for s in data.source_names], dtype=np.int32),
            counts=np.asarray(data.counts(), dtype=np.int64),
            num_underflow=np.array([s.num_underflow for s in data.sources], dtype=np.int64),
            num_overflow=np.array([s.num_overflow for s in data.sources], dtype=np.int64),
            missing=tuple(data.missing),
            files=tuple(str(s.path) for s in data.sources),
            objects=tuple(s.object_name for s in data.sources),
        )


def state_names(sources) -> tuple[str, ...]:
    """Return the names of the state entries: ``kB``, ``fC``, ``LY``, then ``norm_SOURCE`` per source."""
    return PARAMETER_NAMES + tuple(f"norm_{source}" for source in sources)


def check_norm_range(norm_range) -> tuple[float, float]:
    """Return the bounds (low, high) of the normalisation prior as floats.

    Raises InvalidInputError unless 0 < low < high, both finite.
    """
    low, high = (float(v) for v in norm_range)
    if not (np.isfinite(low) and np.isfinite(high) and 0.0 < low < high):
        raise InvalidInputError(
            f"invalid normalisation range {low:g},{high:g}: give two numbers 0 < low < high, e.g. 0.8,1.2"
        )
    return low, high


class PosteriorModel:
    """Joint distribution of the parameters and the observed counts, with the surrogate inside.

    Parameters
    ----------
    model : keras.Model or GanSurrogate
        Regressor from :func:`~neuromct_tf.models.regressor.build_regressor`
        or :func:`~neuromct_tf.models.regressor.load_regressor`, or a GAN
        surrogate from :func:`~neuromct_tf.models.surrogate.load_surrogate`, made for ``spec``.
    spec : DataSpec
        Gives the parameter box (the uniform priors) and the binning.
    observed : ObservedSpectra
        The data; only its sources enter the likelihood.
    norm_range : (float, float)
        Bounds of the uniform prior of each normalisation.
    """

    def __init__(self, model, spec: DataSpec, observed: ObservedSpectra, norm_range=DEFAULT_NORM_RANGE):
        low, high = check_norm_range(norm_range)
        self.spec = spec
        self.observed = observed
        self.norm_range = (low, high)
        self.names = state_names(observed.sources)
        self.num_sources = len(observed.sources)
        self.num_params = len(self.names)
        box = spec.box()
        self.lower = np.concatenate([box[:, 0], np.full(self.num_sources, low)]).astype(np.float64)
        self.upper = np.concatenate([box[:, 1], np.full(self.num_sources, high)]).astype(np.float64)
        self._logits_model = surrogate_logits_model(model)
        self._source_ids = tf.constant(observed.source_ids, tf.int32)
        self._counts = tf.constant(observed.counts, tf.float64)
        self._log_num_in_range = tf.constant(np.log(observed.num_in_range.astype(np.float64)), tf.float64)
        self._nll_derivatives_fn = None
        # Built once, because every new JointDistributionNamed traces its model to find its dtype,
        # which cost about 0.5 s of CPU per eager call and per tf.function trace.
        self._joint_distribution = self._build_joint_distribution()

    def log_probabilities(self, physics):
        """Return the surrogate's log bin probabilities log p_sb.

        Parameters
        ----------
        physics : tf.Tensor of float64, shape (..., 3)
            kB (g/cm2/GeV), fC and LY (photons/MeV).

        Returns
        -------
        tf.Tensor of float64, shape (..., S, num_bins)
            From one surrogate call on all points and sources at once.
        """
        physics = tf.convert_to_tensor(physics, tf.float64)
        batch_shape = tf.shape(physics)[:-1]
        log_p = self._surrogate_log_probabilities(tf.reshape(physics, (-1, 3)))
        return tf.reshape(log_p, tf.concat([batch_shape, [self.num_sources, -1]], axis=0))

    def _surrogate_log_probabilities(self, points):
        num_points = tf.shape(points)[0]
        params = tf.reshape(tf.broadcast_to(points[:, None, :], (num_points, self.num_sources, 3)), (-1, 3))
        sources = tf.tile(self._source_ids, [num_points])
        logits = self._logits_model({"params": tf.cast(params, tf.float32), "source": sources}, training=False)
        log_p = tf.nn.log_softmax(tf.cast(logits, tf.float64), axis=-1)
        return tf.reshape(log_p, (num_points, self.num_sources, -1))

    def log_rates(self, kB, fC, LY, norm):  # noqa: N803 (parameter names of the physics)
        """Return log lambda_sb = log n_s + log N_s + log p_sb, float64 of shape (..., S, num_bins).

        ``kB``, ``fC`` and ``LY`` have shape (...,), ``norm`` has shape (..., S).
        """
        physics = tf.stack([kB, fC, LY], axis=-1)
        log_norm = tf.math.log(norm) + self._log_num_in_range
        return log_norm[..., None] + self.log_probabilities(physics)

    def joint_distribution(self) -> tfd.JointDistributionNamed:
        """Return the joint distribution of ``kB``, ``fC``, ``LY``, ``norm`` (S,) and ``counts`` (S, num_bins).

        The priors are uniform on the spec's box and on the normalisation
        range; ``counts`` is a product of independent Poisson distributions.
        The same instance is returned on every call.
        """
        return self._joint_distribution

    def _build_joint_distribution(self) -> tfd.JointDistributionNamed:
        """Build the distribution that :meth:`joint_distribution` returns."""
        lower = tf.constant(self.lower, tf.float64)
        upper = tf.constant(self.upper, tf.float64)
        return tfd.JointDistributionNamed(
            {
                "kB": tfd.Uniform(lower[0], upper[0]),
                "fC": tfd.Uniform(lower[1], upper[1]),
                "LY": tfd.Uniform(lower[2], upper[2]),
                "norm": tfd.Independent(tfd.Uniform(lower[3:], upper[3:]), reinterpreted_batch_ndims=1),
                "counts": lambda kB, fC, LY, norm: tfd.Independent(  # noqa: N803
                    tfd.Poisson(log_rate=self.log_rates(kB, fC, LY, norm)), reinterpreted_batch_ndims=2
                ),
            },
            name="calibration_fit",
        )

    def unpack(self, state) -> dict:
        """Split states (..., 3 + S) into the named values of :meth:`joint_distribution`, without ``counts``."""
        return {"kB": state[..., 0], "fC": state[..., 1], "LY": state[..., 2], "norm": state[..., 3:]}

    def target_log_prob(self, state):
        """Return the unnormalised log posterior, float64 of shape (...), for states (..., 3 + S).

        It is the joint log-probability with ``counts`` fixed to the data:
        log prior (constant inside the box, -inf outside) plus log likelihood.
        """
        state = tf.convert_to_tensor(state, tf.float64)
        return self.joint_distribution().log_prob(counts=self._counts, **self.unpack(state))

    def log_likelihood(self, state):
        """Return the Poisson log likelihood, float64 of shape (...), for states (..., 3 + S)."""
        state = tf.convert_to_tensor(state, tf.float64)
        values = self.unpack(state)
        rates = tfd.Poisson(log_rate=self.log_rates(**values))
        return tf.reduce_sum(rates.log_prob(self._counts), axis=[-2, -1])

    def constraining_bijector(self) -> tfb.Bijector:
        """Return the map from unconstrained reals (..., 3 + S) onto the open prior box, elementwise sigmoids."""
        return tfb.Sigmoid(low=tf.constant(self.lower), high=tf.constant(self.upper))

    def nll_derivatives(self, theta):
        """Return -log L, its gradient (3 + S,) and its Hessian (3 + S, 3 + S) at one state theta (3 + S,), float64.

        The Hessian comes from one second-order reverse pass over D = 3 + S
        identical copies of theta: the gradient at copy k is row k of a (D, D)
        matrix, and the gradient of the sum of its diagonal with respect to
        copy k is row k of the Hessian. It traces faster than
        ``GradientTape.jacobian``, which vectorises the surrogate's graph
        (2 s against 3 s on 2 CPU cores). The compiled function is kept, so
        only the first call traces.
        """
        if self._nll_derivatives_fn is None:
            num_params = self.num_params

            @tf.function(autograph=False, input_signature=[tf.TensorSpec((num_params,), tf.float64)])
            def compute(point):
                copies = tf.tile(point[None, :], (num_params, 1))
                with tf.GradientTape() as outer:
                    outer.watch(copies)
                    with tf.GradientTape() as inner:
                        inner.watch(copies)
                        values = -self.log_likelihood(copies)
                        total = tf.reduce_sum(values)
                    gradients = inner.gradient(total, copies)
                    diagonal_sum = tf.reduce_sum(tf.linalg.diag_part(gradients))
                matrix = outer.gradient(diagonal_sum, copies)
                return values[0], gradients[0], 0.5 * (matrix + tf.transpose(matrix))

            self._nll_derivatives_fn = compute
        value, gradient, matrix = self._nll_derivatives_fn(tf.constant(theta, tf.float64))
        return float(value.numpy()), gradient.numpy(), matrix.numpy()
