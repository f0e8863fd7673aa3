"""Conditional Wasserstein GAN: (noise, kB, fC, LY, source) to the NPE of one event.

Architecture
------------
Generator G(z, kB, fC, LY, source), the model that is saved and shipped:

1. :class:`ConditionEmbedding` scales kB, fC and LY to [0, 1] by the spec's
   parameter box, maps them affinely to ``condition_width`` features and adds
   a learned embedding of the source.
2. The noise z, ``noise_dim`` draws of a standard normal, is concatenated to
   the condition features and passed through ``generator_layers`` GELU layers
   of ``generator_width`` units and a linear layer to one number u.
3. :class:`NpeOutput` turns u into the observed charge in kNPE,
   npe = (c + s u) LY / LY_ref, with c and s the centre and a quarter of the
   width of the spec's NPE range and LY_ref the centre of the light-yield box.
   The charge is close to proportional to the light yield, so the network
   only learns the departures from that scaling.

Critic D(npe set, kB, fC, LY, source), used in training only:

1. :class:`ReducedNpe` undoes the light-yield scaling of :class:`NpeOutput`
   and standardises the charge; :class:`SortedSet` sorts the ``set_size``
   events of one condition. A sorted set is the empirical quantile function of
   its condition, so the critic can score the widths of the peaks, which a
   critic of single events (``set_size=1``) judges poorly (docs/gan.rst gives
   the measured difference).
2. The sorted set and the condition features of a separate
   :class:`ConditionEmbedding` go through ``critic_layers`` leaky-ReLU layers
   of ``critic_width`` units to one score.

The training loss is the Wasserstein loss with gradient penalty of
Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017
(arXiv:1704.00028). The data spec travels inside the saved generator (in the
configuration of its :class:`ConditionEmbedding`), so :func:`load_generator`
rejects a generator made for another binning, parameter box or source list.
"""

from __future__ import annotations

import json
import os
import weakref
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers, ops  # noqa: E402

from neuromct_tf.errors import InvalidInputError  # noqa: E402
from neuromct_tf.io.atomic import atomic_output  # noqa: E402
from neuromct_tf.specs import DataSpec  # noqa: E402
from neuromct_tf.specs.loading import spec_from_json  # noqa: E402

PACKAGE = "neuromct_tf"
GENERATOR_NAME = "npe_generator"
CRITIC_NAME = "npe_critic"
CONDITION_LAYER = "condition_embedding"


def _scale_constants(spec: DataSpec) -> dict:
    """Return the light-yield reference (photons/MeV) and the centre and scale of the NPE range (kNPE)."""
    light_yield = spec.parameter("LY")
    return {
        "light_yield_reference": 0.5 * (light_yield.min + light_yield.max),
        "npe_center": 0.5 * (spec.binning.low + spec.binning.high),
        "npe_scale": 0.25 * (spec.binning.high - spec.binning.low),
    }


@keras.saving.register_keras_serializable(package=PACKAGE)
class ConditionEmbedding(layers.Layer):
    """Features of the scaled parameters plus a learned embedding of the source.

    Parameters
    ----------
    box : list of [min, max]
        Parameter box of kB, fC and LY, used to scale them to [0, 1].
    num_sources : int
        Number of sources.
    width : int
        Number of features.
    spec_json : str
        The data spec as JSON, stored with the generator (empty in the critic).

    Call arguments: ``params`` float32 of shape (batch, 3) in physical units and
    ``source`` int32 of shape (batch,). Returns float32 of shape (batch, width).
    """

    def __init__(self, box, num_sources, width, spec_json="", **kwargs):
        super().__init__(**kwargs)
        self.box = [[float(low), float(high)] for low, high in box]
        self.num_sources = int(num_sources)
        self.width = int(width)
        self.spec_json = spec_json

    def build(self, params_shape, source_shape=None):
        self.kernel = self.add_weight(name="kernel", shape=(3, self.width), initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.width,), initializer="zeros")
        self.source_embedding = self.add_weight(
            name="source_embedding", shape=(self.num_sources, self.width),
            initializer=keras.initializers.RandomNormal(stddev=1.0),
        )

    def call(self, params, source):
        box = ops.convert_to_tensor(np.asarray(self.box, dtype=np.float32))
        scaled = (params - box[:, 0]) / (box[:, 1] - box[:, 0])  # (batch, 3)
        source_features = ops.take(self.source_embedding, ops.cast(source, "int32"), axis=0)
        return ops.matmul(scaled, self.kernel) + self.bias + source_features

    def get_config(self):
        config = super().get_config()
        config.update(box=self.box, num_sources=self.num_sources, width=self.width, spec_json=self.spec_json)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class NpeOutput(layers.Layer):
    """Map the generator's raw output u (batch, 1) to the charge in kNPE (batch,): (c + s u) LY / LY_ref."""

    def __init__(self, npe_center, npe_scale, light_yield_reference, **kwargs):
        super().__init__(**kwargs)
        self.npe_center = float(npe_center)
        self.npe_scale = float(npe_scale)
        self.light_yield_reference = float(light_yield_reference)

    def call(self, raw, params):
        reduced = self.npe_center + self.npe_scale * raw[:, 0]
        return reduced * params[:, 2] / self.light_yield_reference

    def get_config(self):
        config = super().get_config()
        config.update(
            npe_center=self.npe_center, npe_scale=self.npe_scale, light_yield_reference=self.light_yield_reference
        )
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class ReducedNpe(layers.Layer):
    """Inverse of :class:`NpeOutput` for sets: npe (batch, set_size) kNPE to standardised values (batch, set_size)."""

    def __init__(self, npe_center, npe_scale, light_yield_reference, **kwargs):
        super().__init__(**kwargs)
        self.npe_center = float(npe_center)
        self.npe_scale = float(npe_scale)
        self.light_yield_reference = float(light_yield_reference)

    def call(self, npe, params):
        reduced = npe * self.light_yield_reference / params[:, 2:3]
        return (reduced - self.npe_center) / self.npe_scale

    def get_config(self):
        config = super().get_config()
        config.update(
            npe_center=self.npe_center, npe_scale=self.npe_scale, light_yield_reference=self.light_yield_reference
        )
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class SortedSet(layers.Layer):
    """Sort each set of events in ascending order: (batch, set_size) to (batch, set_size)."""

    def call(self, values):
        return ops.sort(values, axis=-1)


@dataclass(frozen=True)
class GanConfig:
    """Sizes of the generator and the critic.

    Attributes
    ----------
    noise_dim : int
        Dimension of the standard-normal noise z of the generator.
    condition_width : int
        Features of the condition embedding (both networks).
    generator_width, generator_layers : int
        Units and number of the generator's hidden GELU layers.
    critic_width, critic_layers : int
        Units and number of the critic's hidden leaky-ReLU layers.
    set_size : int
        Events of one condition that the critic judges together; 1 gives a
        critic of single events.
    """

    noise_dim: int = 8
    condition_width: int = 32
    generator_width: int = 128
    generator_layers: int = 3
    critic_width: int = 256
    critic_layers: int = 3
    set_size: int = 64

    def __post_init__(self):
        for name, value in asdict(self).items():
            if int(value) < 1:
                raise InvalidInputError(f"GAN size {name}={value} must be a positive integer")


def build_generator(spec: DataSpec, config: GanConfig = GanConfig()) -> keras.Model:
    """Build an untrained generator for ``spec``.

    Returns
    -------
    keras.Model
        Inputs ``noise`` (batch, noise_dim) float32, ``params`` (batch, 3)
        float32 in physical units and ``source`` (batch,) int32; output the
        charge of each event in kNPE, float32 of shape (batch,).
    """
    noise = keras.Input(shape=(config.noise_dim,), dtype="float32", name="noise")
    params = keras.Input(shape=(3,), dtype="float32", name="params")
    source = keras.Input(shape=(), dtype="int32", name="source")
    condition = ConditionEmbedding(
        box=spec.box().tolist(), num_sources=len(spec.sources), width=config.condition_width,
        spec_json=json.dumps(spec.to_dict(), sort_keys=True), name=CONDITION_LAYER,
    )(params, source)
    hidden = layers.Concatenate(name="noise_and_condition")([noise, condition])
    for index in range(config.generator_layers):
        hidden = layers.Dense(config.generator_width, activation="gelu", name=f"generator_hidden_{index}")(hidden)
    raw = layers.Dense(1, name="generator_raw", kernel_initializer=keras.initializers.RandomNormal(stddev=0.01))(hidden)
    npe = NpeOutput(**_scale_constants(spec), name="npe")(raw, params)
    model = keras.Model({"noise": noise, "params": params, "source": source}, npe, name=GENERATOR_NAME)
    return model


def build_critic(spec: DataSpec, config: GanConfig = GanConfig()) -> keras.Model:
    """Build an untrained critic for ``spec``.

    Returns
    -------
    keras.Model
        Inputs ``npe`` (batch, set_size) float32 in kNPE, ``params`` (batch, 3)
        and ``source`` (batch,); output one score per set, float32 of shape (batch,).
    """
    npe = keras.Input(shape=(config.set_size,), dtype="float32", name="npe")
    params = keras.Input(shape=(3,), dtype="float32", name="params")
    source = keras.Input(shape=(), dtype="int32", name="source")
    condition = ConditionEmbedding(
        box=spec.box().tolist(), num_sources=len(spec.sources), width=config.condition_width, name=CONDITION_LAYER,
    )(params, source)
    reduced = ReducedNpe(**_scale_constants(spec), name="reduced_npe")(npe, params)
    hidden = layers.Concatenate(name="set_and_condition")([SortedSet(name="sorted_set")(reduced), condition])
    for index in range(config.critic_layers):
        hidden = layers.Dense(config.critic_width, name=f"critic_hidden_{index}")(hidden)
        hidden = layers.LeakyReLU(negative_slope=0.2, name=f"critic_activation_{index}")(hidden)
    score = layers.Dense(1, name="critic_score")(hidden)
    score = layers.Reshape((), name="score")(score)
    return keras.Model({"npe": npe, "params": params, "source": source}, score, name=CRITIC_NAME)


def generator_noise_dim(generator: keras.Model) -> int:
    """Return the dimension of the generator's noise input."""
    return int(generator.get_layer("noise_and_condition").input[0].shape[-1])


def generator_spec(model: keras.Model, origin: str) -> DataSpec:
    """Return the data spec stored in a generator.

    Raises
    ------
    InvalidInputError
        If ``model`` is not a neuromct-tf generator.
    """
    if model.name != GENERATOR_NAME:
        raise InvalidInputError(
            f"{origin} is not a neuromct-tf GAN generator (model {model.name!r}); train one with 'neuromct-tf train-gan'"
        )
    return spec_from_json(model.get_layer(CONDITION_LAYER).spec_json, origin=f"the spec stored in {origin}")


def is_generator(model: keras.Model) -> bool:
    """Return whether ``model`` is a generator built by :func:`build_generator`."""
    return model.name == GENERATOR_NAME


def save_generator(model: keras.Model, path: str | Path, overwrite: bool = True) -> None:
    """Save a generator to a ``.keras`` file, atomically, without optimizer state."""
    path = Path(path)
    if path.suffix != ".keras":
        raise InvalidInputError(f"model file {path} must end in .keras; Keras 3 saves models in that format")
    with atomic_output(path, overwrite) as temporary:
        target = temporary.with_suffix(".keras")
        model.save(target)
        os.replace(target, temporary)


def load_generator(path: str | Path, spec: DataSpec | None = None) -> tuple[keras.Model, DataSpec]:
    """Load a generator saved by :func:`save_generator` and check its spec.

    Parameters
    ----------
    path : path
        The ``.keras`` file.
    spec : DataSpec, optional
        When given, the stored spec must have the same box, sources and binning.

    Returns
    -------
    model : keras.Model
    stored_spec : DataSpec

    Raises
    ------
    InvalidInputError
        If the file is missing, cannot be loaded or is not a generator.
    SpecMismatchError
        If the stored spec differs from ``spec``.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"model file {path} not found; train one with 'neuromct-tf train-gan'")
    model = load_keras_file(path)
    stored = generator_spec(model, str(path))
    if spec is not None:
        spec.check_compatible(stored, what=f"model {path}")
    return model, stored


def load_keras_file(path: Path, compile: bool = False) -> keras.Model:
    """Load a ``.keras`` file, turning Keras's loading errors into :class:`InvalidInputError`."""
    if not zipfile.is_zipfile(path):
        raise InvalidInputError(
            f"{path} is not a Keras model file (a .keras file is a zip archive); give a model written by neuromct-tf"
        )
    try:
        return keras.models.load_model(path, compile=compile)
    except (ValueError, OSError, KeyError, TypeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InvalidInputError(f"{path} cannot be loaded as a Keras model ({first_line})") from None


#: One compiled generation function per generator, so that generating several sources traces it once.
_GENERATE_FNS: "weakref.WeakKeyDictionary[keras.Model, object]" = weakref.WeakKeyDictionary()


def make_generate_fn(generator: keras.Model):
    """Return a ``tf.function`` mapping (noise (N, noise_dim), params (N, 3), source (N,)) to the NPE (N,) in kNPE.

    The function is built once per generator and reused by later calls.
    """
    if generator in _GENERATE_FNS:
        return _GENERATE_FNS[generator]
    noise_dim = generator_noise_dim(generator)

    @tf.function(
        input_signature=[
            tf.TensorSpec((None, noise_dim), tf.float32), tf.TensorSpec((None, 3), tf.float32),
            tf.TensorSpec((None,), tf.int32),
        ]
    )
    def generate_fn(noise, params, source):
        return generator({"noise": noise, "params": params, "source": source}, training=False)

    _GENERATE_FNS[generator] = generate_fn
    return generate_fn


def generate_events(
    generator: keras.Model, point, source_id: int, num_events: int, rng: np.random.Generator, batch_size: int = 65536
) -> np.ndarray:
    """Generate the charge of ``num_events`` events of one source at one point.

    Parameters
    ----------
    generator : keras.Model
        From :func:`build_generator` or :func:`load_generator`.
    point : sequence of float
        (kB g/cm2/GeV, fC, LY photons/MeV).
    source_id : int
        Position of the source in the spec's source list.
    num_events : int
        Events to generate.
    rng : numpy.random.Generator
        Source of the noise; the same state gives the same events.
    batch_size : int
        Events per generator call.

    Returns
    -------
    numpy.ndarray of float32, shape (num_events,)
        Charge in kNPE.
    """
    generate_fn = make_generate_fn(generator)
    noise_dim = generator_noise_dim(generator)
    params = np.asarray(point, dtype=np.float32).reshape(1, 3)
    outputs = []
    for start in range(0, num_events, batch_size):
        size = min(batch_size, num_events - start)
        noise = rng.standard_normal((size, noise_dim), dtype=np.float32)
        outputs.append(
            generate_fn(
                tf.constant(noise), tf.constant(np.repeat(params, size, axis=0)),
                tf.constant(np.full(size, source_id, dtype=np.int32)),
            ).numpy()
        )
    return np.concatenate(outputs) if outputs else np.zeros(0, dtype=np.float32)


def config_dict(config: GanConfig) -> dict:
    """Return the sizes as a plain dict (for logs and checkpoints)."""
    return asdict(config)


def predict_gan_spectra(
    generator: keras.Model, spec: DataSpec, points: np.ndarray, source_ids: np.ndarray, num_events: int, seed: int = 0
) -> np.ndarray:
    """Return binned spectra of generated events, float64 (N, num_bins), normalised over the binning.

    Each of the N (point, source) queries gets ``num_events`` events from the
    same fixed noise vectors (drawn with ``seed``), so differences between
    queries come from the model alone. A query without events in range gives a row of zeros.

    Parameters
    ----------
    generator : keras.Model
        From :func:`load_generator`.
    spec : DataSpec
        Gives the binning.
    points : numpy.ndarray, shape (N, 3)
        kB (g/cm2/GeV), fC and LY (photons/MeV).
    source_ids : numpy.ndarray of int, shape (N,)
        Source ids.
    num_events : int
        Generated events per query.
    seed : int
        Seed of the noise vectors.
    """
    points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    source_ids = np.broadcast_to(np.asarray(source_ids, dtype=np.int32), (points.shape[0],))
    edges = spec.binning.edges_array()
    noise = np.random.default_rng(seed).standard_normal((num_events, generator_noise_dim(generator))).astype(np.float32)
    generate_fn = make_generate_fn(generator)
    queries_per_call = max(1, 1_000_000 // num_events)
    tiled_noise = tf.constant(np.tile(noise, (queries_per_call, 1)))
    spectra = np.zeros((points.shape[0], edges.size - 1))
    for start in range(0, points.shape[0], queries_per_call):
        stop = min(start + queries_per_call, points.shape[0])
        size = stop - start
        npe = generate_fn(
            tiled_noise[: size * num_events],
            tf.constant(np.repeat(points[start:stop], num_events, axis=0)),
            tf.constant(np.repeat(source_ids[start:stop], num_events)),
        ).numpy().reshape(size, num_events)
        index = np.searchsorted(edges, npe, side="right") - 1
        for row in range(size):
            inside = index[row][(index[row] >= 0) & (index[row] < edges.size - 1)]
            counts = np.bincount(inside, minlength=edges.size - 1).astype(np.float64)
            spectra[start + row] = counts / counts.sum() if counts.sum() > 0 else counts
    return spectra
