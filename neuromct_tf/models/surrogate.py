"""Surrogates of the fit: the regressor, or a GAN generator turned into bin probabilities.

:func:`load_surrogate` reads a ``.keras`` file of either kind. The fit's
likelihood calls ``surrogate_logits_model(model)`` on the result and gets a
callable that maps ``{"params": float32 (N, 3), "source": int32 (N,)}`` to
unnormalised log bin probabilities (N, num_bins), to which it applies
``log_softmax``.

For a generator, :class:`GanSurrogate` pushes a fixed set of noise vectors
through G at every (point, source) and bins the events with a Gaussian kernel
of width ``smoothing`` (kNPE): event x adds
Phi((e_{b+1} - x) / w) - Phi((e_b - x) / w) to bin b, with Phi the standard
normal CDF. The bin probabilities are therefore differentiable in kB, fC and
LY, which HMC needs. The kernel also broadens every peak by w in quadrature,
which is part of the bias of a fit with the GAN. The fixed noise makes them a deterministic function of
the parameters, so the likelihood surface does not jitter between calls.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import tensorflow as tf

from neuromct_tf.errors import InvalidInputError
from neuromct_tf.models.gan import generator_noise_dim, generator_spec, is_generator, load_keras_file
from neuromct_tf.models.regressor import logits_model, model_spec
from neuromct_tf.specs import DataSpec

#: Default number of noise vectors per (point, source) of the GAN surrogate, chosen by the
#: measured cost, bias and posterior width of fits (docs/gan.rst).
DEFAULT_GAN_SAMPLES = 1000

#: Default Gaussian kernel width of the GAN surrogate's binning, in units of the narrowest bin
#: (0.1 kNPE for the default binning). Narrower kernels make the likelihood of 1000 generated
#: events per spectrum rough, with posteriors 2 to 15 times narrower than the statistical error.
DEFAULT_SMOOTHING_BINS = 5.0

#: Weight of a flat spectrum mixed into the GAN surrogate's bin probabilities, so that a bin
#: that no generated event reaches still has a finite log probability.
FLAT_FRACTION = 1e-4


class GanSurrogate:
    """Bin probabilities of a GAN generator from a fixed set of noise vectors and a smooth binning.

    Parameters
    ----------
    generator : keras.Model
        From :func:`~neuromct_tf.models.gan.load_generator`.
    spec : DataSpec
        Gives the binning.
    num_samples : int
        Noise vectors (generated events) per (point, source).
    seed : int
        Seed of the noise vectors.
    smoothing : float, optional
        Width w of the Gaussian kernel in kNPE; default :data:`DEFAULT_SMOOTHING_BINS` narrowest bins.

    Calling it with a dict of ``params`` (float32, shape (N, 3)) and
    ``source`` (int32, shape (N,)) returns float32 of shape (N, num_bins): the
    log bin probabilities, normalised over the binning.
    """

    def __init__(self, generator, spec: DataSpec, num_samples: int = DEFAULT_GAN_SAMPLES, seed: int = 0, smoothing: float | None = None):
        if num_samples < 1:
            raise InvalidInputError(f"invalid number of GAN samples {num_samples}: give a positive number, e.g. {DEFAULT_GAN_SAMPLES}")
        edges = spec.binning.edges_array()
        narrowest = float(np.min(np.diff(edges)))
        self.smoothing = DEFAULT_SMOOTHING_BINS * narrowest if smoothing is None else float(smoothing)
        if not self.smoothing > 0:
            raise InvalidInputError(f"invalid GAN smoothing width {smoothing}: give a positive width in kNPE")
        self.generator = generator
        self.num_samples = int(num_samples)
        self.num_bins = spec.binning.num_bins
        noise = np.random.default_rng(seed).standard_normal((self.num_samples, generator_noise_dim(generator)))
        self._noise = tf.constant(noise, tf.float32)
        self._edges = tf.constant(edges, tf.float32)
        # Bins beyond 4 kernel widths from an event would receive less than 3.2e-5 of its weight.
        self._half_window = int(math.ceil(4.0 * self.smoothing / narrowest))

    def __call__(self, inputs, training=False):
        params = tf.convert_to_tensor(inputs["params"], tf.float32)
        source = tf.convert_to_tensor(inputs["source"], tf.int32)
        num_points = tf.shape(params)[0]
        npe = self.generator(
            {
                "noise": tf.tile(self._noise, [num_points, 1]),
                "params": tf.repeat(params, self.num_samples, axis=0),
                "source": tf.repeat(source, self.num_samples),
            },
            training=False,
        )
        probabilities = self.smooth_histogram(tf.reshape(npe, (num_points, self.num_samples)))
        return tf.math.log((1.0 - FLAT_FRACTION) * probabilities + FLAT_FRACTION / self.num_bins)

    def smooth_histogram(self, npe):
        """Return the kernel-smoothed spectra, float32 (N, num_bins) normalised over the binning, of events npe (N, num_samples)."""
        num_points = tf.shape(npe)[0]
        offsets = tf.range(-self._half_window, self._half_window + 1)
        nearest = tf.searchsorted(self._edges, tf.reshape(npe, (-1,)), side="right") - 1
        bins = tf.reshape(nearest, (num_points, self.num_samples, 1)) + offsets  # (N, samples, window)
        inside = (bins >= 0) & (bins < self.num_bins)
        clipped = tf.clip_by_value(bins, 0, self.num_bins - 1)
        scale = 1.0 / (math.sqrt(2.0) * self.smoothing)
        centred = npe[:, :, None]
        upper = tf.gather(self._edges, clipped + 1)
        lower = tf.gather(self._edges, clipped)
        weights = 0.5 * (tf.math.erf((upper - centred) * scale) - tf.math.erf((lower - centred) * scale))
        weights = tf.where(inside, weights, 0.0)
        rows = tf.broadcast_to(tf.range(num_points)[:, None, None], tf.shape(bins))
        segments = tf.where(inside, rows * self.num_bins + clipped, num_points * self.num_bins)
        counts = tf.math.unsorted_segment_sum(
            tf.reshape(weights, (-1,)), tf.reshape(segments, (-1,)), num_points * self.num_bins + 1
        )
        counts = tf.reshape(counts[:-1], (num_points, self.num_bins))
        totals = tf.reduce_sum(counts, axis=1, keepdims=True)
        return counts / tf.maximum(totals, 1e-30)


def load_surrogate(
    path: str | Path,
    spec: DataSpec | None = None,
    num_samples: int = DEFAULT_GAN_SAMPLES,
    seed: int = 0,
    smoothing: float | None = None,
):
    """Load a regressor or a GAN generator from a ``.keras`` file and check its spec.

    Parameters
    ----------
    path : path
        The ``.keras`` file.
    spec : DataSpec, optional
        When given, the stored spec must have the same box, sources and binning.
    num_samples : int
        Noise vectors per (point, source) when the file contains a generator.
    seed : int
        Seed of those noise vectors.
    smoothing : float, optional
        Kernel width of the generator's binning in kNPE, see :class:`GanSurrogate`.

    Returns
    -------
    model : keras.Model or GanSurrogate
        The regressor, or the generator wrapped in a :class:`GanSurrogate`.
    stored_spec : DataSpec

    Raises
    ------
    InvalidInputError
        If the file is missing or contains neither kind of model.
    SpecMismatchError
        If the stored spec differs from ``spec``.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(
            f"model file {path} not found; train one with 'neuromct-tf train-regressor' or 'neuromct-tf train-gan'"
        )
    model = load_keras_file(path)
    stored = generator_spec(model, str(path)) if is_generator(model) else model_spec(model, str(path))
    if spec is not None:
        spec.check_compatible(stored, what=f"model {path}")
    if is_generator(model):
        return GanSurrogate(model, stored, num_samples=num_samples, seed=seed, smoothing=smoothing), stored
    return model, stored


def surrogate_logits_model(model):
    """Return the callable of the likelihood: the regressor's logits model, or a :class:`GanSurrogate` itself."""
    return model if isinstance(model, GanSurrogate) else logits_model(model)
