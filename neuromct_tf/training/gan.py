"""Training of the conditional WGAN-GP on per-event NPE of an MC grid.

Recipe
------
- Data: a fixed random subsample of ``events_per_block`` triggers of every
  (point, source) of the training files (:func:`~neuromct_tf.data.events.read_event_sets`).
- One generator step follows ``critic_steps`` critic steps. Each step draws
  ``batch_size / set_size`` (point, source) blocks uniformly and, from each,
  ``set_size`` distinct triggers. The generator makes as many events for the
  same conditions from fresh noise. All draws are stateless and seeded by
  the seed and the step number.
- Critic loss: mean D(fake) - mean D(real) + lambda (||grad D(x_hat)||_2 - 1)^2,
  with x_hat a random point on the line between a sorted real set and a sorted
  generated set (both sorted, so that the line pairs quantiles), as in
  Gulrajani et al. 2017 (arXiv:1704.00028). Generator loss: -mean D(fake).
- Adam with beta1 = 0 and beta2 = 0.9 for both networks; the learning rates
  decay linearly to 5 % over the run.
- An epoch is ``steps_per_epoch`` generator steps. After each epoch the
  validation metric selects the best generator, which is written to the
  output file. The metric is the mean Wasserstein-1 distance in kNPE between
  the binned spectra of ``validation_events`` generated events and of the
  simulated validation events, on up to ``validation_points`` validation points. The same noise
  vectors are used at every epoch, so the metric changes only with the model.
- A checkpoint (weights of both networks, optimizer states and loop state)
  is written after every epoch, so ``resume=True`` continues after a kill
  from the last finished epoch with the same draws as an uninterrupted run.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from neuromct_tf.data.events import EventSets
from neuromct_tf.data.histograms import GridHistograms
from neuromct_tf.errors import InvalidInputError
from neuromct_tf.io.atomic import atomic_output, check_output_path
from neuromct_tf.models.gan import GanConfig, build_critic, build_generator, save_generator
from neuromct_tf.specs import DataSpec
from neuromct_tf.training.regressor import checkpoint_directory, wasserstein1

import keras  # noqa: E402  (imported after the GAN module has set the backend)
import tensorflow as tf  # noqa: E402

logger = logging.getLogger(__name__)

#: Minimum number of (point, source) blocks needed to train.
MIN_TRAINING_BLOCKS = 10


@dataclass(frozen=True)
class GanTrainingConfig:
    """Settings of the GAN training loop.

    Attributes
    ----------
    epochs : int
        Maximum number of epochs.
    steps_per_epoch : int
        Generator steps per epoch.
    batch_size : int
        Real (and generated) events per critic step; a multiple of the set size.
    critic_steps : int
        Critic steps per generator step.
    gradient_penalty : float
        Weight lambda of the gradient penalty.
    generator_learning_rate, critic_learning_rate : float
        Initial learning rates of Adam.
    beta_1, beta_2 : float
        Adam's moment decay rates.
    validation_points : int
        Validation points scored after each epoch, drawn once with the seed.
    validation_events : int
        Generated events per validation spectrum.
    patience : int
        Epochs without improvement of the validation metric before stopping.
    seed : int
        Seed of the weight initialisation, the draws of the training steps and the validation noise.
    """

    epochs: int = 60
    steps_per_epoch: int = 250
    batch_size: int = 4096
    critic_steps: int = 5
    gradient_penalty: float = 10.0
    generator_learning_rate: float = 5e-4
    critic_learning_rate: float = 5e-4
    beta_1: float = 0.0
    beta_2: float = 0.9
    validation_points: int = 100
    validation_events: int = 10_000
    patience: int = 1000
    seed: int = 0


@dataclass
class GanLoopState:
    """State of the training loop saved with every checkpoint."""

    epoch: int = 0
    best_metric: float = math.inf
    best_epoch: int = -1
    epochs_without_improvement: int = 0
    model_config: dict = field(default_factory=dict)
    history: list = field(default_factory=list)


@dataclass(frozen=True)
class GanEpochRecord:
    """Metrics of one epoch.

    Attributes
    ----------
    epoch : int
        1-based epoch number.
    critic_loss, generator_loss : float
        Means over the epoch's generator steps of the last critic loss before
        each generator step and of the generator loss.
    wasserstein_estimate : float
        Mean of D(real) - D(fake), the critic's estimate of the Wasserstein distance of sets.
    validation_w1 : float
        Validation metric, mean Wasserstein-1 distance in kNPE.
    seconds : float
        Wall time of the epoch, validation included.
    improved : bool
        Whether the epoch set a new best validation metric.
    """

    epoch: int
    critic_loss: float
    generator_loss: float
    wasserstein_estimate: float
    validation_w1: float
    seconds: float
    improved: bool


@dataclass(frozen=True)
class GanTrainingSummary:
    """Outcome of a training run: best epoch and metric, epochs run, wall time and generator weights."""

    output: Path
    best_epoch: int
    best_validation_w1: float
    epochs_run: int
    stopped_early: bool
    wall_seconds: float
    num_generator_weights: int


class ValidationScorer:
    """Mean binned Wasserstein-1 distance between generated and simulated validation spectra.

    Parameters
    ----------
    validation : GridHistograms
        Simulated validation spectra in the spec's binning.
    spec : DataSpec
        Gives the binning.
    num_points : int
        Points scored, drawn once with ``seed`` (all when there are fewer).
    num_events : int
        Generated events per spectrum, from one fixed set of noise vectors.
    noise_dim : int
        Dimension of the generator's noise.
    seed : int
        Seed of the point draw and of the noise.
    """

    def __init__(self, validation: GridHistograms, spec: DataSpec, num_points: int, num_events: int, noise_dim: int, seed: int):
        rng = np.random.default_rng([seed, 1])
        chosen = np.sort(rng.permutation(validation.num_points)[:num_points])
        num_sources = len(spec.sources)
        params = np.repeat(validation.points[chosen], num_sources, axis=0).astype(np.float32)
        sources = np.tile(np.arange(num_sources, dtype=np.int32), chosen.size)
        counts = validation.counts[chosen].reshape(-1, spec.binning.num_bins).astype(np.float64)
        keep = counts.sum(axis=1) > 0
        if not keep.any():
            raise InvalidInputError("the validation files have no spectrum with entries in the binning")
        self.params, self.sources = params[keep], sources[keep]
        self.target = counts[keep] / counts[keep].sum(axis=1, keepdims=True)
        self.noise = rng.standard_normal((num_events, noise_dim)).astype(np.float32)
        self.edges = spec.binning.edges_array()
        self.bin_widths = np.diff(self.edges)

    @property
    def num_spectra(self) -> int:
        """Number of (point, source) spectra scored."""
        return int(self.params.shape[0])

    def score(self, generate_fn) -> float:
        """Return the mean W1 in kNPE for a generator function (noise, params, source) to npe."""
        num_events = self.noise.shape[0]
        spectra_per_call = max(1, 2_000_000 // num_events)
        noise = tf.constant(np.tile(self.noise, (spectra_per_call, 1)))
        distances = []
        for start in range(0, self.num_spectra, spectra_per_call):
            stop = min(start + spectra_per_call, self.num_spectra)
            size = stop - start
            npe = generate_fn(
                noise[: size * num_events],
                tf.constant(np.repeat(self.params[start:stop], num_events, axis=0)),
                tf.constant(np.repeat(self.sources[start:stop], num_events)),
            ).numpy().reshape(size, num_events)
            generated = binned_spectra(npe, self.edges)
            distances.append(wasserstein1(generated, self.target[start:stop], self.bin_widths))
        return float(np.mean(np.concatenate(distances)))


def binned_spectra(npe: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Return spectra normalised over the binning, float64 (num_spectra, num_bins), of events npe (num_spectra, num_events).

    A spectrum without events in range gives a row of zeros.
    """
    num_spectra = npe.shape[0]
    num_bins = edges.size - 1
    index = np.searchsorted(edges, npe, side="right") - 1
    inside = (index >= 0) & (index < num_bins)
    rows = np.broadcast_to(np.arange(num_spectra)[:, None], npe.shape)
    counts = np.bincount(
        (rows[inside] * num_bins + index[inside]).ravel(), minlength=num_spectra * num_bins
    ).reshape(num_spectra, num_bins).astype(np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def train_gan(
    train: EventSets,
    validation: GridHistograms,
    spec: DataSpec,
    output: str | Path,
    model_config: GanConfig = GanConfig(),
    config: GanTrainingConfig = GanTrainingConfig(),
    resume: bool = False,
    overwrite: bool = False,
    log_path: str | Path | None = None,
    epoch_fn: Callable[[GanEpochRecord], None] | None = None,
) -> GanTrainingSummary:
    """Train a conditional WGAN-GP and write the best generator (lowest validation W1) to ``output``.

    Parameters
    ----------
    train : EventSets
        Subsampled training triggers.
    validation : GridHistograms
        Simulated validation spectra in the spec's binning.
    spec : DataSpec
        Stored inside the generator.
    output : path
        ``.keras`` file of the best generator.
    model_config : GanConfig
        Network sizes (ignored on resume, where the checkpoint's sizes are used).
    config : GanTrainingConfig
        Loop settings.
    resume : bool
        Continue from the checkpoint of an interrupted run with the same output.
    overwrite : bool
        Replace an existing output when not resuming.
    log_path : path, optional
        CSV log, one row per epoch; default ``output`` with suffix ``.csv``.
    epoch_fn : callable, optional
        Called with the :class:`GanEpochRecord` of each epoch.

    Raises
    ------
    InvalidInputError
        If there are fewer than :data:`MIN_TRAINING_BLOCKS` training blocks,
        fewer kept triggers per block than the set size, a batch size that is
        not a multiple of the set size, or ``resume`` without a checkpoint.
    OutputError
        If the output exists without ``overwrite`` or ``resume``.
    """
    output = Path(output)
    log_path = Path(log_path) if log_path is not None else output.with_suffix(".csv")
    checkpoints = checkpoint_directory(output)
    state_path = checkpoints / "state.json"
    if resume:
        if not state_path.exists():
            raise InvalidInputError(f"no checkpoint to resume in {checkpoints}; start without --resume")
        state = GanLoopState(**json.loads(state_path.read_text()))
        model_config = GanConfig(**state.model_config)
    else:
        check_output_path(output, overwrite)
        state = GanLoopState(model_config=asdict(model_config))
    _check_training_inputs(train, model_config, config)

    keras.utils.set_random_seed(config.seed)
    generator = build_generator(spec, model_config)
    critic = build_critic(spec, model_config)
    total_steps = config.epochs * config.steps_per_epoch
    generator_optimizer = _make_optimizer(config.generator_learning_rate, total_steps, config)
    critic_optimizer = _make_optimizer(config.critic_learning_rate, total_steps * config.critic_steps, config)
    generator_optimizer.build(generator.trainable_variables)
    critic_optimizer.build(critic.trainable_variables)
    networks = {
        "generator": generator.weights, "critic": critic.weights,
        "generator_optimizer": generator_optimizer.variables, "critic_optimizer": critic_optimizer.variables,
    }
    if resume:
        _restore_checkpoint(networks, checkpoints / "last.npz")
        logger.info("resuming after epoch %d (best validation W1 %.5f at epoch %d)", state.epoch, state.best_metric, state.best_epoch)
    else:
        checkpoints.mkdir(parents=True, exist_ok=True)
        log_path.unlink(missing_ok=True)

    train_step = _make_train_step(generator, critic, generator_optimizer, critic_optimizer, train, model_config, config)
    scorer = ValidationScorer(
        validation, spec, config.validation_points, config.validation_events, model_config.noise_dim, config.seed
    )
    generate_fn = tf.function(
        lambda noise, params, source: generator({"noise": noise, "params": params, "source": source}, training=False)
    )
    logger.info(
        "training on %d blocks of %d triggers; validation on %d spectra of %d generated events",
        train.num_blocks, train.events_per_block, scorer.num_spectra, config.validation_events,
    )
    start = time.perf_counter()
    stopped_early = False
    while state.epoch < config.epochs:
        epoch = state.epoch + 1
        epoch_start = time.perf_counter()
        sums = np.zeros(3)
        for step in range(config.steps_per_epoch):
            global_step = (epoch - 1) * config.steps_per_epoch + step
            losses = train_step(tf.constant([config.seed, global_step], dtype=tf.int64))
            sums += np.array([float(value) for value in losses])
        metric = scorer.score(generate_fn)
        improved = metric < state.best_metric
        if improved:
            state.best_metric, state.best_epoch, state.epochs_without_improvement = metric, epoch, 0
            save_generator(generator, output, overwrite=True)
        else:
            state.epochs_without_improvement += 1
        means = sums / config.steps_per_epoch
        record = GanEpochRecord(
            epoch=epoch, critic_loss=float(means[0]), generator_loss=float(means[1]),
            wasserstein_estimate=float(means[2]), validation_w1=metric,
            seconds=time.perf_counter() - epoch_start, improved=improved,
        )
        state.epoch = epoch
        state.history.append(asdict(record))
        _append_log(log_path, record)
        _save_checkpoint(networks, state, checkpoints / "last.npz", state_path)
        if epoch_fn is not None:
            epoch_fn(record)
        if state.epochs_without_improvement >= config.patience:
            stopped_early = True
            logger.info("stopping early: no improvement of the validation W1 for %d epochs", config.patience)
            break

    return GanTrainingSummary(
        output=output, best_epoch=state.best_epoch, best_validation_w1=state.best_metric,
        epochs_run=state.epoch, stopped_early=stopped_early, wall_seconds=time.perf_counter() - start,
        num_generator_weights=int(sum(np.prod(v.shape) for v in generator.trainable_weights)),
    )


def _check_training_inputs(train: EventSets, model_config: GanConfig, config: GanTrainingConfig) -> None:
    if train.num_blocks < MIN_TRAINING_BLOCKS:
        raise InvalidInputError(
            f"the training grid has {train.num_blocks} (point, source) blocks, fewer than the "
            f"{MIN_TRAINING_BLOCKS} needed; simulate a larger grid"
        )
    if train.events_per_block < model_config.set_size:
        raise InvalidInputError(
            f"{train.events_per_block} events kept per block are fewer than the critic's set size "
            f"{model_config.set_size}; raise --events-per-block or lower --set-size"
        )
    if config.batch_size % model_config.set_size:
        raise InvalidInputError(
            f"batch size {config.batch_size} must be a multiple of the set size {model_config.set_size}"
        )


def _make_optimizer(learning_rate: float, total_steps: int, config: GanTrainingConfig) -> keras.optimizers.Optimizer:
    schedule = keras.optimizers.schedules.PolynomialDecay(
        initial_learning_rate=learning_rate, decay_steps=max(1, total_steps), end_learning_rate=0.05 * learning_rate,
    )
    return keras.optimizers.Adam(learning_rate=schedule, beta_1=config.beta_1, beta_2=config.beta_2)


def _make_train_step(generator, critic, generator_optimizer, critic_optimizer, train: EventSets, model_config: GanConfig, config: GanTrainingConfig):
    events = tf.constant(train.npe)  # (num_blocks, events_per_block)
    block_params = tf.constant(train.params)
    block_source = tf.constant(train.source)
    num_blocks, events_per_block = train.npe.shape
    set_size = model_config.set_size
    num_sets = config.batch_size // set_size
    noise_dim = model_config.noise_dim
    penalty = float(config.gradient_penalty)

    def draw(seed):
        # Blocks uniformly, then set_size distinct triggers of each block: the indices of the
        # largest of events_per_block uniform keys form a random subset without repeats.
        # A repeated trigger would give a real set an exact tie that no generated set has.
        block_seed, event_seed, noise_seed, mix_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
        blocks = tf.random.stateless_uniform((num_sets,), block_seed, minval=0, maxval=num_blocks, dtype=tf.int32)
        keys = tf.random.stateless_uniform((num_sets, events_per_block), event_seed)
        chosen = tf.math.top_k(keys, k=set_size, sorted=False).indices
        real = tf.sort(tf.gather(tf.gather(events, blocks), chosen, batch_dims=1), axis=1)  # (num_sets, set_size)
        params = tf.gather(block_params, blocks)
        source = tf.gather(block_source, blocks)
        noise = tf.random.stateless_normal((num_sets * set_size, noise_dim), noise_seed)
        mix = tf.random.stateless_uniform((num_sets, 1), mix_seed)
        return real, params, source, noise, mix

    def generate_sets(noise, params, source, training):
        npe = generator(
            {"noise": noise, "params": tf.repeat(params, set_size, axis=0), "source": tf.repeat(source, set_size)},
            training=training,
        )
        return tf.sort(tf.reshape(npe, (-1, set_size)), axis=1)

    def score(npe, params, source):
        return critic({"npe": npe, "params": params, "source": source}, training=True)

    @tf.function
    def train_step(seed):
        step_seeds = tf.random.experimental.stateless_split(seed, config.critic_steps + 1)
        critic_loss = tf.constant(0.0)
        estimate = tf.constant(0.0)
        for index in range(config.critic_steps):
            real, params, source, noise, mix = draw(step_seeds[index])
            fake = tf.stop_gradient(generate_sets(noise, params, source, training=False))
            with tf.GradientTape() as tape:
                mixed = mix * real + (1.0 - mix) * fake
                with tf.GradientTape() as penalty_tape:
                    penalty_tape.watch(mixed)
                    mixed_score = score(mixed, params, source)
                gradients = penalty_tape.gradient(mixed_score, mixed)
                norms = tf.sqrt(tf.reduce_sum(tf.square(gradients), axis=1) + 1e-12)
                estimate = tf.reduce_mean(score(real, params, source)) - tf.reduce_mean(score(fake, params, source))
                critic_loss = -estimate + penalty * tf.reduce_mean(tf.square(norms - 1.0))
            critic_gradients = tape.gradient(critic_loss, critic.trainable_variables)
            critic_optimizer.apply_gradients(zip(critic_gradients, critic.trainable_variables))

        _, params, source, noise, _ = draw(step_seeds[config.critic_steps])
        with tf.GradientTape() as tape:
            generator_loss = -tf.reduce_mean(score(generate_sets(noise, params, source, training=True), params, source))
        generator_gradients = tape.gradient(generator_loss, generator.trainable_variables)
        generator_optimizer.apply_gradients(zip(generator_gradients, generator.trainable_variables))
        return critic_loss, generator_loss, estimate

    return train_step


def _append_log(path: Path, record: GanEpochRecord) -> None:
    new_file = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.writer(handle)
        if new_file:
            writer.writerow(
                ["epoch", "critic_loss", "generator_loss", "wasserstein_estimate", "validation_w1", "seconds", "improved"]
            )
        writer.writerow([
            record.epoch, f"{record.critic_loss:.6g}", f"{record.generator_loss:.6g}",
            f"{record.wasserstein_estimate:.6g}", f"{record.validation_w1:.6g}", f"{record.seconds:.3f}",
            int(record.improved),
        ])


def _save_checkpoint(networks: dict, state: GanLoopState, weights_path: Path, state_path: Path) -> None:
    arrays = {
        f"{group}/{index}": np.asarray(keras.ops.convert_to_numpy(variable))
        for group, variables in networks.items()
        for index, variable in enumerate(variables)
    }
    with atomic_output(weights_path, overwrite=True) as temporary:
        with open(temporary, "wb") as handle:
            np.savez(handle, **arrays)
    with atomic_output(state_path, overwrite=True) as temporary:
        temporary.write_text(json.dumps(asdict(state)))


def _restore_checkpoint(networks: dict, weights_path: Path) -> None:
    if not weights_path.exists():
        raise InvalidInputError(f"checkpoint weights {weights_path} not found; start without --resume")
    with np.load(weights_path) as arrays:
        for group, variables in networks.items():
            for index, variable in enumerate(variables):
                key = f"{group}/{index}"
                if key not in arrays or arrays[key].shape != tuple(variable.shape):
                    raise InvalidInputError(
                        f"checkpoint {weights_path} does not match the networks ({key}); start without --resume"
                    )
                variable.assign(arrays[key])
