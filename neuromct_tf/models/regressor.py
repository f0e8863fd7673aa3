"""Transformer regressor: (kB, fC, LY, source) to the probability of each NPE bin.

Architecture
------------
1. :class:`ParameterTokens` scales kB, fC and LY to [0, 1] by the spec's
   parameter box and embeds each scaled value into ``tokens_per_parameter``
   tokens of ``width`` features, by an affine map per parameter and token.
   The source id becomes one more token through a learned embedding.
2. ``num_blocks`` :class:`TransformerBlock` layers (pre-normalisation:
   layer normalisation, multi-head self-attention, residual; layer
   normalisation, GELU feed-forward, residual) mix the tokens.
3. The head flattens the tokens, applies a GELU hidden layer and a linear
   layer to one logit per bin, divides the logits by a learned temperature
   (:class:`TemperatureScaling`) and takes the softmax.

The data spec travels inside the saved model (in the configuration of
:class:`ParameterTokens`), so :func:`load_regressor` can reject a model made
for another binning, parameter box or source list.

Ensembles
---------
:func:`build_ensemble` joins regressors trained with different seeds into one
model with the same inputs and outputs: its probabilities are the mean of the
members' probabilities (:class:`MeanProbabilityLogits`). The error of one
trained model scatters from seed to seed. The mean of M independent members
cuts the scattering part by about sqrt(M) and costs M times the compute of
one member.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers, ops  # noqa: E402

from neuromct_tf.errors import InvalidInputError  # noqa: E402
from neuromct_tf.io.atomic import atomic_output  # noqa: E402
from neuromct_tf.models.gan import is_generator, load_keras_file  # noqa: E402
from neuromct_tf.specs import DataSpec  # noqa: E402
from neuromct_tf.specs.loading import spec_from_json  # noqa: E402

PACKAGE = "neuromct_tf"
TOKENS_LAYER = "parameter_tokens"
LOGITS_LAYER = "scaled_logits"
MEMBER_PREFIX = "member_"


@keras.saving.register_keras_serializable(package=PACKAGE)
class ParameterTokens(layers.Layer):
    """Tokens of the scaled parameters and of the source.

    Parameters
    ----------
    box : list of [min, max]
        Parameter box of kB, fC and LY, used to scale them to [0, 1].
    num_sources : int
        Number of sources.
    width : int
        Features per token.
    tokens_per_parameter : int
        Tokens of each parameter.
    spec_json : str
        The data spec as JSON, stored with the model.
    num_frequencies : int
        Fourier features of each scaled parameter x: sin(2^k pi x) and
        cos(2^k pi x) for k = 0 ... num_frequencies - 1, embedded next to x
        itself. 0 embeds x alone.

    Call arguments: ``params`` float32 of shape (batch, 3) in physical units and
    ``source`` int32 of shape (batch,). Returns float32 of shape
    (batch, 3 * tokens_per_parameter + 1, width).
    """

    def __init__(self, box, num_sources, width, tokens_per_parameter=1, spec_json="", num_frequencies=0, **kwargs):
        super().__init__(**kwargs)
        self.box = [[float(low), float(high)] for low, high in box]
        self.num_sources = int(num_sources)
        self.width = int(width)
        self.tokens_per_parameter = int(tokens_per_parameter)
        self.spec_json = spec_json
        self.num_frequencies = int(num_frequencies)

    def build(self, params_shape, source_shape=None):
        shape = (3, self.tokens_per_parameter, self.width)
        self.kernel = self.add_weight(name="kernel", shape=shape, initializer="glorot_uniform")
        if self.num_frequencies:
            self.fourier_kernel = self.add_weight(
                name="fourier_kernel", shape=(3, 2 * self.num_frequencies, self.tokens_per_parameter, self.width),
                initializer="glorot_uniform",
            )
        self.bias = self.add_weight(name="bias", shape=shape, initializer=keras.initializers.RandomNormal(stddev=0.02))
        self.source_embedding = self.add_weight(
            name="source_embedding", shape=(self.num_sources, self.width),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
        )

    def call(self, params, source):
        box = ops.convert_to_tensor(np.asarray(self.box, dtype=np.float32))
        scaled = (params - box[:, 0]) / (box[:, 1] - box[:, 0])  # (batch, 3)
        tokens = scaled[:, :, None, None] * self.kernel + self.bias  # (batch, 3, tokens, width)
        if self.num_frequencies:
            frequencies = ops.convert_to_tensor(np.pi * 2.0 ** np.arange(self.num_frequencies, dtype=np.float32))
            phases = scaled[:, :, None] * frequencies  # (batch, 3, frequencies)
            features = ops.concatenate([ops.sin(phases), ops.cos(phases)], axis=2)
            tokens = tokens + ops.einsum("bpf,pftw->bptw", features, self.fourier_kernel)
        tokens = ops.reshape(tokens, (-1, 3 * self.tokens_per_parameter, self.width))
        source_token = ops.take(self.source_embedding, ops.cast(source, "int32"), axis=0)[:, None, :]
        return ops.concatenate([tokens, source_token], axis=1)

    def get_config(self):
        config = super().get_config()
        config.update(
            box=self.box, num_sources=self.num_sources, width=self.width,
            tokens_per_parameter=self.tokens_per_parameter, spec_json=self.spec_json,
            num_frequencies=self.num_frequencies,
        )
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class TransformerBlock(layers.Layer):
    """Pre-normalisation Transformer encoder block: self-attention and a GELU feed-forward, each with a residual."""

    def __init__(self, width, num_heads, feed_forward_width, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if width % num_heads:
            raise InvalidInputError(f"the token width {width} must be a multiple of the number of heads {num_heads}")
        self.width = int(width)
        self.num_heads = int(num_heads)
        self.feed_forward_width = int(feed_forward_width)
        self.dropout = float(dropout)
        self.attention_norm = layers.LayerNormalization(epsilon=1e-6)
        self.attention = layers.MultiHeadAttention(num_heads, key_dim=width // num_heads, dropout=dropout)
        self.feed_forward_norm = layers.LayerNormalization(epsilon=1e-6)
        self.feed_forward_hidden = layers.Dense(feed_forward_width, activation="gelu")
        self.feed_forward_out = layers.Dense(width)

    def build(self, input_shape):
        self.attention_norm.build(input_shape)
        self.attention.build(input_shape, input_shape)
        self.feed_forward_norm.build(input_shape)
        self.feed_forward_hidden.build(input_shape)
        self.feed_forward_out.build(tuple(input_shape[:-1]) + (self.feed_forward_width,))

    def call(self, tokens, training=False):
        normed = self.attention_norm(tokens)
        tokens = tokens + self.attention(normed, normed, training=training)
        hidden = self.feed_forward_hidden(self.feed_forward_norm(tokens))
        return tokens + self.feed_forward_out(hidden)

    def get_config(self):
        config = super().get_config()
        config.update(
            width=self.width, num_heads=self.num_heads,
            feed_forward_width=self.feed_forward_width, dropout=self.dropout,
        )
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class TemperatureScaling(layers.Layer):
    """Division of the logits by a learned positive temperature, exp(log_temperature)."""

    def __init__(self, initial_temperature=1.0, **kwargs):
        super().__init__(**kwargs)
        self.initial_temperature = float(initial_temperature)

    def build(self, input_shape):
        self.log_temperature = self.add_weight(
            name="log_temperature", shape=(),
            initializer=keras.initializers.Constant(np.log(self.initial_temperature)),
        )

    def call(self, logits):
        return logits / ops.exp(self.log_temperature)

    def get_config(self):
        config = super().get_config()
        config.update(initial_temperature=self.initial_temperature)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class MeanProbabilityLogits(layers.Layer):
    """Logits of the mean of several softmax distributions.

    Takes a list of M logit tensors (batch, num_bins) and returns
    log(mean_m softmax(logits_m)), computed as a log-sum-exp of the members'
    log-softmax for stability. Its softmax is the mean probability.
    """

    def call(self, member_logits):
        stacked = ops.stack(list(member_logits), axis=0)
        log_probabilities = ops.log_softmax(stacked, axis=-1)
        return ops.logsumexp(log_probabilities, axis=0) - np.log(len(member_logits)).astype("float32")


@dataclass(frozen=True)
class RegressorConfig:
    """Sizes of the regressor.

    Attributes
    ----------
    num_blocks : int
        Transformer blocks.
    width : int
        Features per token.
    num_heads : int
        Attention heads; must divide ``width``.
    feed_forward_width : int
        Hidden features of each block's feed-forward layer.
    head_width : int
        Hidden features of the output head.
    tokens_per_parameter : int
        Tokens of each of kB, fC and LY.
    num_frequencies : int
        Fourier features per parameter (sine and cosine at ``num_frequencies``
        octaves) added to the linear embedding of the tokens. 0 turns them off.
    dropout : float
        Attention dropout during training.
    """

    num_blocks: int = 4
    width: int = 64
    num_heads: int = 8
    feed_forward_width: int = 128
    head_width: int = 1000
    tokens_per_parameter: int = 1
    num_frequencies: int = 4
    dropout: float = 0.0


def build_regressor(spec: DataSpec, config: RegressorConfig = RegressorConfig()) -> keras.Model:
    """Build an untrained regressor for ``spec``.

    Returns
    -------
    keras.Model
        Inputs ``params`` (batch, 3) float32 in physical units and ``source``
        (batch,) int32; output (batch, num_bins) float32 bin probabilities.
    """
    params = keras.Input(shape=(3,), dtype="float32", name="params")
    source = keras.Input(shape=(), dtype="int32", name="source")
    tokens = ParameterTokens(
        box=spec.box().tolist(), num_sources=len(spec.sources), width=config.width,
        tokens_per_parameter=config.tokens_per_parameter, num_frequencies=config.num_frequencies,
        spec_json=json.dumps(spec.to_dict(), sort_keys=True), name=TOKENS_LAYER,
    )(params, source)
    for index in range(config.num_blocks):
        tokens = TransformerBlock(
            config.width, config.num_heads, config.feed_forward_width, config.dropout, name=f"block_{index}"
        )(tokens)
    hidden = layers.LayerNormalization(epsilon=1e-6, name="head_norm")(tokens)
    hidden = layers.Flatten(name="flatten")(hidden)
    hidden = layers.Dense(config.head_width, activation="gelu", name="head_hidden")(hidden)
    logits = layers.Dense(spec.binning.num_bins, name="logits")(hidden)
    logits = TemperatureScaling(name=LOGITS_LAYER)(logits)
    probabilities = layers.Softmax(name="probabilities")(logits)
    model = keras.Model({"params": params, "source": source}, probabilities, name="spectrum_regressor")
    model.regressor_config = config
    return model


def ensemble_members(model: keras.Model) -> list[keras.Model]:
    """Return the member logit models of an ensemble, or an empty list for a single regressor."""
    return [layer for layer in model.layers if isinstance(layer, keras.Model) and layer.name.startswith(MEMBER_PREFIX)]


def build_ensemble(members: list[keras.Model], origins: list[str] | None = None) -> keras.Model:
    """Join trained regressors of one spec into an ensemble regressor.

    Parameters
    ----------
    members : list of keras.Model
        Regressors from :func:`build_regressor` (any sizes), at least two.
        Ensembles among them are unpacked into their members.
    origins : list of str, optional
        Names of the members for error messages (file names).

    Returns
    -------
    keras.Model
        Same inputs and output as a single regressor; the probabilities are
        the mean of the members' probabilities. The members' weights are
        shared, not copied.

    Raises
    ------
    InvalidInputError
        If fewer than two members are given or one is not a regressor.
    SpecMismatchError
        If the members were made with different specs.
    """
    origins = list(origins) if origins is not None else [f"member {i}" for i in range(len(members))]
    singles = []
    for model, origin in zip(members, origins):
        spec = model_spec(model, origin)
        inner = ensemble_members(model)
        for single in inner if inner else [model]:
            singles.append((single, spec, origin))
    if len(singles) < 2:
        raise InvalidInputError(
            f"an ensemble needs at least two regressors, got {len(singles)}; give more model files"
        )
    _, first_spec, first_origin = singles[0]
    for _, spec, origin in singles[1:]:
        first_spec.check_compatible(spec, what=f"regressor {origin} (against {first_origin})")
    params = keras.Input(shape=(3,), dtype="float32", name="params")
    source = keras.Input(shape=(), dtype="int32", name="source")
    member_logits = []
    for index, (model, _, _) in enumerate(singles):
        member = logits_model(model, name=f"{MEMBER_PREFIX}{index}")
        member_logits.append(member({"params": params, "source": source}))
    logits = MeanProbabilityLogits(name=LOGITS_LAYER)(member_logits)
    probabilities = layers.Softmax(name="probabilities")(logits)
    return keras.Model({"params": params, "source": source}, probabilities, name="spectrum_regressor_ensemble")


def logits_model(model: keras.Model, name: str = "spectrum_regressor_logits") -> keras.Model:
    """Return a model that shares the weights of ``model`` and outputs the temperature-scaled logits."""
    return keras.Model(model.inputs, model.get_layer(LOGITS_LAYER).output, name=name)


def model_spec(model: keras.Model, origin: str) -> DataSpec:
    """Return the data spec stored in a regressor (for an ensemble, in its first member)."""
    members = ensemble_members(model)
    holder = members[0] if members else model
    try:
        layer = holder.get_layer(TOKENS_LAYER)
    except ValueError:
        raise InvalidInputError(f"{origin} is not a neuromct-tf regressor: it has no layer {TOKENS_LAYER!r}") from None
    return spec_from_json(layer.spec_json, origin=f"the spec stored in {origin}")


def count_weights(model: keras.Model) -> int:
    """Return the number of trainable weights."""
    return int(sum(np.prod(v.shape) for v in model.trainable_weights))


def save_regressor(model: keras.Model, path: str | Path, overwrite: bool = True, include_optimizer: bool = False) -> None:
    """Save a regressor to a ``.keras`` file, atomically.

    The optimizer state is saved only with ``include_optimizer=True`` (training
    checkpoints); a model for prediction and fitting is a third of the size without it.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise InvalidInputError(f"model file {path} must end in .keras; Keras 3 saves models in that format")
    if not include_optimizer and getattr(model, "optimizer", None) is not None:
        # keras.models.clone_model also copies the compiled optimizer, so rebuild from the config.
        weights = model.get_weights()
        model = model.__class__.from_config(model.get_config())
        model.set_weights(weights)
    with atomic_output(path, overwrite) as temporary:
        target = temporary.with_suffix(".keras")
        model.save(target)
        os.replace(target, temporary)


def load_regressor(path: str | Path, spec: DataSpec | None = None, compile: bool = False):
    """Load a regressor saved by :func:`save_regressor` and check its spec.

    Parameters
    ----------
    path : path
        The ``.keras`` file.
    spec : DataSpec, optional
        When given, the stored spec must have the same box, sources and binning.
    compile : bool
        Restore the optimizer state as well (to resume training).

    Returns
    -------
    model : keras.Model
    stored_spec : DataSpec

    Raises
    ------
    InvalidInputError
        If the file is missing or not a regressor.
    SpecMismatchError
        If the stored spec differs from ``spec``; the message names both binnings, boxes or source lists.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"model file {path} not found; train one with 'neuromct-tf train-regressor'")
    model = load_keras_file(path, compile=compile)
    if is_generator(model):
        raise InvalidInputError(
            f"{path} is a GAN generator, not a regressor; give a regressor from 'neuromct-tf train-regressor'"
        )
    stored = model_spec(model, str(path))
    if spec is not None:
        spec.check_compatible(stored, what=f"model {path}")
    return model, stored


def make_predict_fn(model: keras.Model, jit_compile: bool = False):
    """Return a ``tf.function`` mapping (params (N, 3) float32, source (N,) int32) to probabilities (N, num_bins)."""

    @tf.function(
        input_signature=[tf.TensorSpec((None, 3), tf.float32), tf.TensorSpec((None,), tf.int32)],
        jit_compile=jit_compile,
    )
    def predict_fn(params, source):
        return model({"params": params, "source": source}, training=False)

    return predict_fn


def predict_spectra(model: keras.Model, points: np.ndarray, source_ids: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Return the bin probabilities, float64 of shape (N, num_bins), for points (N, 3) and source ids (N,)."""
    points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    source_ids = np.broadcast_to(np.asarray(source_ids, dtype=np.int32), (points.shape[0],))
    predict_fn = make_predict_fn(model)
    outputs = [
        predict_fn(tf.constant(points[i : i + batch_size]), tf.constant(source_ids[i : i + batch_size])).numpy()
        for i in range(0, points.shape[0], batch_size)
    ]
    return np.concatenate(outputs).astype(np.float64) if outputs else np.zeros((0, model.output_shape[-1]))


def config_dict(config: RegressorConfig) -> dict:
    """Return the sizes as a plain dict (for logs and result files)."""
    return asdict(config)
