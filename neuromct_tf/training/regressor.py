"""Training of the Transformer regressor on binned spectra of an MC grid.

Recipe
------
- Inputs: every (point, source) of the training histograms with at least one
  entry in range; the target is the histogram normalised over the binning.
- Each epoch draws fresh Poisson fluctuations of the training counts
  (``tf.random.stateless_poisson``, seeded by the seed, the epoch and the
  batch), so the model is never trained on the same noise twice and cannot learn it.
  This doubles the variance of the targets, so a fine-tuning run at a low
  learning rate may turn it off (``poisson_noise=False``) and fit the
  simulated counts themselves.
- Loss: the Kullback–Leibler divergence KL(target || prediction), computed
  as the cross-entropy minus the target entropy. For a spectrum of N entries
  the Poisson deviance of the counts against N times the prediction equals
  2 N KL, so minimising KL is the binned Poisson likelihood fit per event, the
  same likelihood the fit uses.
- AdamW with a linear warm-up and a cosine decay of the learning rate.
- After each epoch the validation metric, the mean Wasserstein-1 distance
  between predicted and validation CDFs (in kNPE), selects the best model
  (written to the output file) and drives early stopping.
- Distillation (``teacher``): the targets are the probabilities of a
  teacher model, usually an ensemble of regressors of different seeds
  (:func:`~neuromct_tf.models.regressor.build_ensemble`), at points drawn
  uniformly in the parameter box afresh at every step, so the student learns
  the teacher between the grid points as well as on them. An epoch has as
  many steps as with the training grid. The ensemble is the more accurate
  model, and the student keeps the cost of one member in the fit.
- A checkpoint (model, optimizer state and loop state) is written after
  every epoch, so ``resume=True`` continues after a kill from the last
  finished epoch, with the same shuffling and noise as an uninterrupted run.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from neuromct_tf.data.histograms import GridHistograms
from neuromct_tf.errors import InvalidInputError
from neuromct_tf.io.atomic import atomic_output, check_output_path
from neuromct_tf.models.regressor import (
    RegressorConfig,
    build_regressor,
    ensemble_members,
    load_regressor,
    logits_model,
    make_predict_fn,
    save_regressor,
)
from neuromct_tf.specs import DataSpec

import keras  # noqa: E402  (imported after the regressor module has set the backend)
import tensorflow as tf  # noqa: E402

logger = logging.getLogger(__name__)

#: Minimum number of (point, source) spectra needed to train.
MIN_TRAINING_SPECTRA = 10


@dataclass(frozen=True)
class TrainingConfig:
    """Settings of the training loop.

    Attributes
    ----------
    epochs : int
        Maximum number of epochs.
    batch_size : int
        Spectra per gradient step.
    learning_rate : float
        Peak learning rate of AdamW, reached after the warm-up.
    weight_decay : float
        Decoupled weight decay of AdamW.
    warmup_epochs : int
        Epochs of linear warm-up.
    patience : int
        Epochs without improvement of the validation metric before stopping.
    seed : int
        Seed of the weight initialisation, the shuffling and the Poisson noise.
    poisson_noise : bool
        Draw fresh Poisson fluctuations of the training counts at every step;
        without them the targets are the simulated spectra themselves.
    """

    epochs: int = 300
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 5
    patience: int = 30
    seed: int = 0
    poisson_noise: bool = True


@dataclass
class LoopState:
    """State of the training loop saved with every checkpoint."""

    epoch: int = 0
    best_metric: float = math.inf
    best_epoch: int = -1
    epochs_without_improvement: int = 0
    history: list = field(default_factory=list)


@dataclass(frozen=True)
class EpochRecord:
    """Metrics of one epoch: mean training KL loss, validation mean Wasserstein-1 (kNPE), learning rate, wall time (s)."""

    epoch: int
    loss: float
    validation_w1: float
    learning_rate: float
    seconds: float
    improved: bool


@dataclass(frozen=True)
class TrainingSummary:
    """Outcome of a training run: best epoch and metric, epochs run, wall time and weights."""

    output: Path
    best_epoch: int
    best_validation_w1: float
    epochs_run: int
    stopped_early: bool
    wall_seconds: float
    num_weights: int


def flatten_histograms(histograms: GridHistograms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (params (M, 3) float32, source ids (M,) int32, counts (M, num_bins) float32) of non-empty spectra."""
    num_points, num_sources, num_bins = histograms.counts.shape
    params = np.repeat(histograms.points, num_sources, axis=0).astype(np.float32)
    sources = np.tile(np.arange(num_sources, dtype=np.int32), num_points)
    counts = histograms.counts.reshape(-1, num_bins).astype(np.float32)
    keep = counts.sum(axis=1) > 0
    return params[keep], sources[keep], counts[keep]


def wasserstein1(predicted: np.ndarray, reference: np.ndarray, bin_widths: np.ndarray) -> np.ndarray:
    """Return the Wasserstein-1 distance in kNPE between normalised spectra of shape (..., num_bins)."""
    difference = np.cumsum(predicted, axis=-1) - np.cumsum(reference, axis=-1)
    return np.sum(np.abs(difference) * bin_widths, axis=-1)


def checkpoint_directory(output: Path) -> Path:
    """Return the directory of the per-epoch checkpoints of an output model file."""
    return output.parent / ".neuromct-checkpoints" / output.stem


def train_regressor(
    train: GridHistograms,
    validation: GridHistograms,
    spec: DataSpec,
    output: str | Path,
    model_config: RegressorConfig = RegressorConfig(),
    config: TrainingConfig = TrainingConfig(),
    resume: bool = False,
    overwrite: bool = False,
    log_path: str | Path | None = None,
    epoch_fn: Callable[[EpochRecord], None] | None = None,
    initial_model: str | Path | None = None,
    teacher: keras.Model | None = None,
) -> TrainingSummary:
    """Train a regressor and write the best model (lowest validation W1) to ``output``.

    Parameters
    ----------
    train, validation : GridHistograms
        Training and validation spectra in the spec's binning.
    spec : DataSpec
        Stored inside the model.
    output : path
        ``.keras`` file of the best model.
    model_config : RegressorConfig
        Model sizes (ignored on resume, where the checkpoint's model is used,
        and with ``initial_model``, whose sizes are used).
    config : TrainingConfig
        Loop settings.
    resume : bool
        Continue from the checkpoint of an interrupted run with the same output.
    overwrite : bool
        Replace an existing output when not resuming.
    log_path : path, optional
        CSV log, one row per epoch; default ``output`` with suffix ``.csv``.
    epoch_fn : callable, optional
        Called with the :class:`EpochRecord` of each epoch.
    initial_model : path, optional
        Regressor ``.keras`` file made for ``spec`` whose weights start the
        training (fine-tuning with a fresh optimizer and learning-rate
        schedule); the default is a new model initialised from ``config.seed``.
    teacher : keras.Model, optional
        A regressor or ensemble made for ``spec``. When given, the targets are
        its probabilities at uniform random points of the parameter box and
        random sources (seeded by ``config.seed``, the epoch and the step)
        rather than the training spectra, and ``config.poisson_noise`` is
        ignored. ``train`` still sets the number of steps per epoch.

    Raises
    ------
    InvalidInputError
        If there are fewer than :data:`MIN_TRAINING_SPECTRA` training spectra or
        no validation spectrum, or ``resume`` is requested without a checkpoint.
    OutputError
        If the output exists without ``overwrite`` or ``resume``.
    """
    output = Path(output)
    log_path = Path(log_path) if log_path is not None else output.with_suffix(".csv")
    train_params, train_sources, train_counts = flatten_histograms(train)
    valid_params, valid_sources, valid_counts = flatten_histograms(validation)
    if train_params.shape[0] < MIN_TRAINING_SPECTRA:
        raise InvalidInputError(
            f"the training grid has {train_params.shape[0]} non-empty spectra, fewer than the "
            f"{MIN_TRAINING_SPECTRA} needed; simulate a larger grid"
        )
    if valid_params.shape[0] == 0:
        raise InvalidInputError("the validation files have no spectrum with entries in the binning")
    valid_target = valid_counts / valid_counts.sum(axis=1, keepdims=True)

    checkpoints = checkpoint_directory(output)
    state_path = checkpoints / "state.json"
    last_path = checkpoints / "last.keras"
    steps_per_epoch = math.ceil(train_params.shape[0] / config.batch_size)
    if resume:
        if not state_path.exists() or not last_path.exists():
            raise InvalidInputError(f"no checkpoint to resume in {checkpoints}; start without --resume")
        model, _ = load_regressor(last_path, spec, compile=True)
        state = LoopState(**json.loads(state_path.read_text()))
        logger.info("resuming after epoch %d (best validation W1 %.5f at epoch %d)", state.epoch, state.best_metric, state.best_epoch)
    else:
        check_output_path(output, overwrite)
        keras.utils.set_random_seed(config.seed)
        if initial_model is not None:
            model = load_initial_model(initial_model, spec)
            logger.info("starting from the weights of %s", initial_model)
        else:
            model = build_regressor(spec, model_config)
        model.compile(optimizer=_make_optimizer(config, steps_per_epoch))
        state = LoopState()
        checkpoints.mkdir(parents=True, exist_ok=True)
        log_path.unlink(missing_ok=True)

    optimizer = model.optimizer
    train_step = _make_train_step(logits_model(model), optimizer, config.poisson_noise and teacher is None)
    if teacher is not None:
        teacher_fn = make_predict_fn(teacher)
        box = spec.box().astype(np.float32)
        num_sources = len(spec.sources)
    bin_widths = np.diff(spec.binning.edges_array())
    start = time.perf_counter()
    stopped_early = False
    while state.epoch < config.epochs:
        epoch = state.epoch + 1
        epoch_start = time.perf_counter()
        order = np.random.default_rng([config.seed, epoch]).permutation(train_params.shape[0])
        losses = []
        for step in range(steps_per_epoch):
            batch = order[step * config.batch_size : (step + 1) * config.batch_size]
            noise_seed = tf.constant([config.seed, epoch * steps_per_epoch + step], dtype=tf.int64)
            if teacher is None:
                params, sources, counts = train_params[batch], train_sources[batch], train_counts[batch]
            else:
                rng = np.random.default_rng([config.seed, epoch, step])
                params = rng.uniform(box[:, 0], box[:, 1], size=(batch.size, 3)).astype(np.float32)
                sources = rng.integers(0, num_sources, size=batch.size).astype(np.int32)
                counts = teacher_fn(tf.constant(params), tf.constant(sources)).numpy()
            loss = train_step(tf.constant(params), tf.constant(sources), tf.constant(counts), noise_seed)
            losses.append(float(loss))
        predicted = model.predict({"params": valid_params, "source": valid_sources}, batch_size=4096, verbose=0)
        metric = float(np.mean(wasserstein1(predicted.astype(np.float64), valid_target, bin_widths)))
        improved = metric < state.best_metric
        if improved:
            state.best_metric, state.best_epoch, state.epochs_without_improvement = metric, epoch, 0
            save_regressor(model, output, overwrite=True)
        else:
            state.epochs_without_improvement += 1
        record = EpochRecord(
            epoch=epoch, loss=float(np.mean(losses)), validation_w1=metric,
            learning_rate=float(keras.ops.convert_to_numpy(optimizer.learning_rate)),
            seconds=time.perf_counter() - epoch_start, improved=improved,
        )
        state.epoch = epoch
        state.history.append(asdict(record))
        _append_log(log_path, record)
        _save_checkpoint(model, state, last_path, state_path)
        if epoch_fn is not None:
            epoch_fn(record)
        if state.epochs_without_improvement >= config.patience:
            stopped_early = True
            logger.info("stopping early: no improvement of the validation W1 for %d epochs", config.patience)
            break

    return TrainingSummary(
        output=output, best_epoch=state.best_epoch, best_validation_w1=state.best_metric,
        epochs_run=state.epoch, stopped_early=stopped_early, wall_seconds=time.perf_counter() - start,
        num_weights=int(sum(np.prod(v.shape) for v in model.trainable_weights)),
    )


def load_initial_model(path: str | Path, spec: DataSpec) -> keras.Model:
    """Load the regressor that starts a fine-tuning or distillation run.

    Raises
    ------
    InvalidInputError
        If the file is missing, is not a regressor, or is an ensemble.
    SpecMismatchError
        If the model was made for another spec.
    """
    model, _ = load_regressor(path, spec, compile=False)
    if ensemble_members(model):
        raise InvalidInputError(
            f"{path} is an ensemble, which cannot be fine-tuned as one model; start from one of its members, "
            "and pass the ensemble with --teacher to distil it"
        )
    return model


def _make_optimizer(config: TrainingConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    warmup_steps = config.warmup_epochs * steps_per_epoch
    decay_steps = max(1, config.epochs * steps_per_epoch - warmup_steps)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 100, decay_steps=decay_steps, alpha=0.01,
        warmup_target=config.learning_rate, warmup_steps=warmup_steps,
    )
    return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay)


def _make_train_step(model: keras.Model, optimizer: keras.optimizers.Optimizer, poisson_noise: bool = True):
    variables = model.trainable_variables

    @tf.function(reduce_retracing=True)
    def train_step(params, source, counts, noise_seed):
        # Fresh Poisson noise of the counts, normalised; an all-zero draw (possible for tiny
        # spectra) falls back to the unfluctuated spectrum.
        if poisson_noise:
            noisy = tf.random.stateless_poisson(tf.shape(counts), seed=noise_seed, lam=counts, dtype=tf.float32)
        else:
            noisy = counts
        totals = tf.reduce_sum(noisy, axis=1, keepdims=True)
        noisy = tf.where(totals > 0, noisy, counts)
        target = noisy / tf.reduce_sum(noisy, axis=1, keepdims=True)
        entropy = -tf.reduce_sum(tf.math.multiply_no_nan(tf.math.log(target), target), axis=1)
        with tf.GradientTape() as tape:
            logits = model({"params": params, "source": source}, training=True)
            cross_entropy = -tf.reduce_sum(target * tf.nn.log_softmax(logits, axis=1), axis=1)
            loss = tf.reduce_mean(cross_entropy - entropy)
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(gradients, variables))
        return loss

    return train_step


def _append_log(path: Path, record: EpochRecord) -> None:
    new_file = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.writer(handle)
        if new_file:
            writer.writerow(["epoch", "loss", "validation_w1", "learning_rate", "seconds", "improved"])
        writer.writerow([record.epoch, f"{record.loss:.6g}", f"{record.validation_w1:.6g}",
                         f"{record.learning_rate:.6g}", f"{record.seconds:.3f}", int(record.improved)])


def _save_checkpoint(model: keras.Model, state: LoopState, model_path: Path, state_path: Path) -> None:
    save_regressor(model, model_path, overwrite=True, include_optimizer=True)
    with atomic_output(state_path, overwrite=True) as temporary:
        temporary.write_text(json.dumps(asdict(state)))
