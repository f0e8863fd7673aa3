"""Transformer regressor: serialisation, spec checks, training that learns, and resume."""

from __future__ import annotations

import csv
from dataclasses import replace

import keras
import numpy as np
import pytest
import tensorflow as tf

from neuromct_tf.data.histograms import build_grid_histograms
from neuromct_tf.errors import InvalidInputError, SpecMismatchError
from neuromct_tf.models.regressor import (
    TOKENS_LAYER,
    RegressorConfig,
    build_ensemble,
    build_regressor,
    count_weights,
    ensemble_members,
    load_regressor,
    logits_model,
    predict_spectra,
    save_regressor,
)
from neuromct_tf.specs import default_spec
from neuromct_tf.training.regressor import (
    TrainingConfig,
    _make_train_step,
    flatten_histograms,
    train_regressor,
    wasserstein1,
)

TINY_MODEL = RegressorConfig(num_blocks=1, width=16, num_heads=2, feed_forward_width=32, head_width=64)


@pytest.fixture(scope="module")
def histograms(tiny_grids):
    spec = tiny_grids["spec"]
    return (
        build_grid_histograms([tiny_grids["training"]], spec),
        build_grid_histograms([tiny_grids["validation"]], spec),
    )


def mean_w1(model, histograms, spec):
    params, sources, counts = flatten_histograms(histograms)
    target = counts / counts.sum(axis=1, keepdims=True)
    predicted = predict_spectra(model, params, sources)
    return float(np.mean(wasserstein1(predicted, target, np.diff(spec.binning.edges_array()))))


def test_default_and_reference_sizes():
    # The default sizes (1.19M weights) and the larger reference configuration (1.5M weights)
    # compared in docs/benchmarks.md.
    assert count_weights(build_regressor(default_spec())) == 1_194_057
    larger = RegressorConfig(width=100, num_heads=10, feed_forward_width=200, head_width=1000)
    model = build_regressor(default_spec(), larger)
    assert 1.4e6 < count_weights(model) < 1.6e6
    assert model.output_shape == (None, 800)


def test_keras_round_trip_identical(tmp_path, tiny_spec):
    model = build_regressor(tiny_spec, TINY_MODEL)
    points = np.array([[6.0, 0.0, 8000.0], [15.45, 0.525, 10100.0], [24.0, 1.0, 12000.0]])
    before = predict_spectra(model, points, np.array([0, 3, 4]))
    save_regressor(model, tmp_path / "model.keras")
    loaded, stored_spec = load_regressor(tmp_path / "model.keras", tiny_spec)
    after = predict_spectra(loaded, points, np.array([0, 3, 4]))
    np.testing.assert_array_equal(before, after)
    assert stored_spec.to_dict() == tiny_spec.to_dict()
    np.testing.assert_allclose(after.sum(axis=1), 1.0, rtol=1e-5)


def test_fourier_round_trip_and_weights(tmp_path, tiny_spec):
    model = build_regressor(tiny_spec, replace(TINY_MODEL, num_frequencies=3))
    linear = build_regressor(tiny_spec, replace(TINY_MODEL, num_frequencies=0))
    # Each of the 3 parameters has 6 features (sine and cosine at 3 octaves), each mapped onto
    # one token of 16 features.
    assert count_weights(model) - count_weights(linear) == 3 * 6 * 16
    points = np.array([[6.0, 0.0, 8000.0], [15.45, 0.525, 10100.0], [24.0, 1.0, 12000.0]])
    before = predict_spectra(model, points, np.array([0, 3, 4]))
    save_regressor(model, tmp_path / "fourier.keras")
    loaded, _ = load_regressor(tmp_path / "fourier.keras", tiny_spec)
    assert loaded.get_layer(TOKENS_LAYER).num_frequencies == 3
    np.testing.assert_array_equal(before, predict_spectra(loaded, points, np.array([0, 3, 4])))


def test_fourier_tokens_match_formula(tiny_spec):
    layer = build_regressor(tiny_spec, RegressorConfig(
        num_blocks=1, width=4, num_heads=2, feed_forward_width=4, head_width=4, num_frequencies=2,
    )).get_layer(TOKENS_LAYER)
    box = np.asarray(layer.box)
    params = np.array([[10.5, 0.3, 9000.0]], dtype=np.float32)
    scaled = (params[0] - box[:, 0]) / (box[:, 1] - box[:, 0])
    kernel, fourier, bias = (np.asarray(w) for w in (layer.kernel, layer.fourier_kernel, layer.bias))
    phases = scaled[:, None] * np.pi * np.array([1.0, 2.0])
    features = np.concatenate([np.sin(phases), np.cos(phases)], axis=1)  # (3, 4)
    expected = scaled[:, None, None] * kernel + bias + np.einsum("pf,pftw->ptw", features, fourier)
    tokens = np.asarray(layer(tf.constant(params), tf.constant([2])))[0]
    np.testing.assert_allclose(tokens[:3], expected.reshape(3, 4), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tokens[3], np.asarray(layer.source_embedding)[2], rtol=1e-6)


def test_saved_model_omits_optimizer(tmp_path, tiny_spec):
    model = build_regressor(tiny_spec, TINY_MODEL)
    model.compile(optimizer=keras.optimizers.Adam())
    model.optimizer.build(model.trainable_variables)
    save_regressor(model, tmp_path / "with.keras", include_optimizer=True)
    save_regressor(model, tmp_path / "without.keras")
    # Adam keeps two moments per weight, so even with the file overheads of a tiny model the
    # checkpoint is more than twice the size.
    assert (tmp_path / "with.keras").stat().st_size > 2.0 * (tmp_path / "without.keras").stat().st_size
    loaded, _ = load_regressor(tmp_path / "without.keras", tiny_spec)
    np.testing.assert_array_equal(loaded.get_weights()[0], model.get_weights()[0])


def test_spec_mismatch_names_both(tmp_path, tiny_spec):
    save_regressor(build_regressor(tiny_spec, TINY_MODEL), tmp_path / "model.keras")
    with pytest.raises(SpecMismatchError) as error:
        load_regressor(tmp_path / "model.keras", default_spec())
    assert "160 bins from 0 to 16 kNPE" in str(error.value)
    assert "800 bins from 0.4 to 16.4 kNPE" in str(error.value)


def test_training_beats_flat_and_untrained(tmp_path, tiny_grids, histograms):
    spec = tiny_grids["spec"]
    train, validation = histograms
    untrained = build_regressor(spec, TINY_MODEL)
    summary = train_regressor(
        train, validation, spec, tmp_path / "model.keras", TINY_MODEL,
        TrainingConfig(epochs=25, batch_size=32, learning_rate=3e-3, warmup_epochs=2, seed=1),
    )
    trained, _ = load_regressor(summary.output, spec)

    params, _, counts = flatten_histograms(validation)
    flat = np.full(counts.shape, 1.0 / counts.shape[1])
    target = counts / counts.sum(axis=1, keepdims=True)
    flat_w1 = float(np.mean(wasserstein1(flat, target, np.diff(spec.binning.edges_array()))))
    trained_w1 = mean_w1(trained, validation, spec)
    # On held-out points the trained model must be far closer than a flat spectrum (W1 ~ 5 kNPE)
    # and than its untrained self. Halving is far outside the noise of 300-event spectra.
    assert trained_w1 < 0.5 * flat_w1
    assert trained_w1 < 0.5 * mean_w1(untrained, validation, spec)
    assert summary.best_validation_w1 == pytest.approx(trained_w1, rel=1e-4)


def read_log(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_resume_continues_from_saved_epoch(tmp_path, tiny_grids, histograms):
    spec = tiny_grids["spec"]
    train, validation = histograms
    config = TrainingConfig(epochs=6, batch_size=64, learning_rate=3e-3, warmup_epochs=1, seed=2, patience=100)
    output = tmp_path / "model.keras"

    class Killed(Exception):
        pass

    def kill_after_third(record):
        if record.epoch == 3:
            raise Killed

    with pytest.raises(Killed):
        train_regressor(train, validation, spec, output, TINY_MODEL, config, epoch_fn=kill_after_third)
    epochs_seen = []
    summary = train_regressor(
        train, validation, spec, output, TINY_MODEL, config, resume=True,
        epoch_fn=lambda record: epochs_seen.append(record.epoch),
    )
    assert epochs_seen == [4, 5, 6]
    assert summary.epochs_run == 6
    assert [int(row["epoch"]) for row in read_log(output.with_suffix(".csv"))] == [1, 2, 3, 4, 5, 6]

    uninterrupted = train_regressor(
        train, validation, spec, tmp_path / "straight.keras", TINY_MODEL, config
    )
    # Same seeds, same shuffling and noise: the resumed run ends where the uninterrupted one does,
    # up to floating-point differences of multi-threaded CPU kernels.
    assert summary.best_validation_w1 == pytest.approx(uninterrupted.best_validation_w1, rel=1e-3)


def test_initial_model_starts_from_its_weights(tmp_path, tiny_grids, histograms):
    spec = tiny_grids["spec"]
    train, validation = histograms
    first = train_regressor(
        train, validation, spec, tmp_path / "first.keras", TINY_MODEL,
        TrainingConfig(epochs=15, batch_size=32, learning_rate=3e-3, warmup_epochs=2, seed=1),
    )
    start, _ = load_regressor(first.output, spec)
    start_w1 = mean_w1(start, validation, spec)

    # At a low learning rate the first fine-tuning epoch stays close to the starting model, while an
    # untrained model is far worse. A run that ignored the initial weights would fail both checks.
    epochs = []
    tuned = train_regressor(
        train, validation, spec, tmp_path / "tuned.keras", RegressorConfig(),
        TrainingConfig(epochs=3, batch_size=32, learning_rate=1e-4, warmup_epochs=0, seed=3, patience=100),
        epoch_fn=epochs.append, initial_model=first.output,
    )
    assert epochs[0].validation_w1 < 1.5 * start_w1
    assert epochs[0].validation_w1 < 0.5 * mean_w1(build_regressor(spec, TINY_MODEL), validation, spec)
    # The sizes come from the initial model, not from the RegressorConfig passed in.
    assert count_weights(load_regressor(tuned.output, spec)[0]) == count_weights(start)



def test_no_poisson_noise_fits_simulated_counts(tiny_grids, histograms):
    spec = tiny_grids["spec"]
    train, _ = histograms
    params, sources, counts = flatten_histograms(train)
    params, sources, counts = params[:16], sources[:16], counts[:16]
    model = build_regressor(spec, TINY_MODEL)
    logits = keras.ops.convert_to_numpy(
        logits_model(model)({"params": params, "source": sources}, training=True)
    ).astype(np.float64)
    log_predicted = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    target = counts / counts.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.sum(np.where(target > 0, target * (np.log(target) - log_predicted), 0.0), axis=1)

    def first_loss(poisson_noise, seed):
        # A learning rate of zero leaves the weights alone, so the step only evaluates the loss.
        step = _make_train_step(logits_model(model), keras.optimizers.SGD(0.0), poisson_noise)
        return float(step(tf.constant(params), tf.constant(sources), tf.constant(counts), tf.constant([seed, 0], tf.int64)))

    # Without the redraw the loss is the KL divergence from the simulated spectra, to float32 precision.
    # With the redraw the targets change with the noise seed, and so does the loss.
    assert first_loss(False, 1) == pytest.approx(float(np.mean(kl)), rel=1e-4)
    assert first_loss(True, 1) != pytest.approx(first_loss(True, 2), rel=1e-4)


def kl_divergence(target, predicted):
    """Mean KL(target || predicted) over rows of probabilities."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(target > 0, target * (np.log(target) - np.log(predicted)), 0.0)
    return float(np.mean(np.sum(terms, axis=1)))


def random_points(spec, size, seed):
    rng = np.random.default_rng(seed)
    box = spec.box()
    return rng.uniform(box[:, 0], box[:, 1], size=(size, 3)), rng.integers(0, len(spec.sources), size=size)


def test_ensemble_mean_and_round_trip(tmp_path, tiny_spec):
    members = []
    for seed in (1, 2, 3):
        keras.utils.set_random_seed(seed)
        members.append(build_regressor(tiny_spec, TINY_MODEL))
    points, sources = random_points(tiny_spec, 64, seed=0)
    expected = np.mean([predict_spectra(member, points, sources) for member in members], axis=0)

    # An ensemble of an ensemble and a regressor is unpacked into three members.
    pair = build_ensemble(members[:2])
    ensemble = build_ensemble([pair, members[2]])
    save_regressor(ensemble, tmp_path / "ensemble.keras")
    loaded, stored = load_regressor(tmp_path / "ensemble.keras", tiny_spec)
    assert len(ensemble_members(loaded)) == 3
    assert stored.binning.num_bins == tiny_spec.binning.num_bins
    # Float32 softmax of 160 bins: agreement to 1e-6 absolute on probabilities of order 1e-2.
    np.testing.assert_allclose(predict_spectra(loaded, points, sources), expected, atol=1e-6)
    assert not np.allclose(expected, predict_spectra(members[0], points, sources), atol=1e-4)
    # The likelihood reads the logits, and their softmax is the mean probability as well.
    logits = keras.ops.convert_to_numpy(logits_model(loaded)({"params": points.astype(np.float32), "source": sources}))
    np.testing.assert_allclose(np.exp(logits), expected, rtol=1e-4)


def test_ensemble_rejects_bad_members(tiny_spec):
    model = build_regressor(tiny_spec, TINY_MODEL)
    with pytest.raises(InvalidInputError, match="at least two regressors"):
        build_ensemble([model])
    other = build_regressor(default_spec(), TINY_MODEL)
    with pytest.raises(SpecMismatchError, match="other.keras"):
        build_ensemble([model, other], ["tiny.keras", "other.keras"])


def test_distillation_learns_teacher(tmp_path, tiny_grids, histograms):
    spec = tiny_grids["spec"]
    train, validation = histograms
    # Teacher: an ensemble of two untrained models of other seeds, a smooth function of the
    # parameters that differs from the simulated spectra, so a student that learnt the
    # training spectra instead would not come close to it.
    teachers = []
    for seed in (7, 8):
        keras.utils.set_random_seed(seed)
        teachers.append(build_regressor(spec, TINY_MODEL))
    teacher = build_ensemble(teachers)
    keras.utils.set_random_seed(9)
    untrained = build_regressor(spec, TINY_MODEL)
    save_regressor(untrained, tmp_path / "start.keras")
    config = TrainingConfig(epochs=15, batch_size=32, learning_rate=3e-3, warmup_epochs=2, seed=1, patience=100)
    summary = train_regressor(
        train, validation, spec, tmp_path / "student.keras", TINY_MODEL, config,
        initial_model=tmp_path / "start.keras", teacher=teacher,
    )
    control = train_regressor(
        train, validation, spec, tmp_path / "control.keras", TINY_MODEL, config, initial_model=tmp_path / "start.keras",
    )
    points, sources = random_points(spec, 500, seed=123)
    target = predict_spectra(teacher, points, sources)

    def distance(model):
        return kl_divergence(target, predict_spectra(model, points, sources))

    before = distance(untrained)
    after = distance(load_regressor(summary.output, spec)[0])
    without_teacher = distance(load_regressor(control.output, spec)[0])
    # Off the grid, at points the training never drew, the student must be far closer to the
    # teacher than where it started and than the same training on the simulated spectra.
    assert after < 0.5 * before
    assert after < 0.5 * without_teacher
    assert summary.epochs_run == 15
