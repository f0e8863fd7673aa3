"""GAN generator and critic: serialisation, spec checks, sorted-set critic, and the fit surrogate."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from neuromct_tf.errors import InvalidInputError, SpecMismatchError
from neuromct_tf.models.gan import (
    GanConfig,
    build_critic,
    build_generator,
    generate_events,
    load_generator,
    save_generator,
)
from neuromct_tf.models.regressor import RegressorConfig, build_regressor, save_regressor
from neuromct_tf.models.surrogate import GanSurrogate, load_surrogate
from neuromct_tf.specs import default_spec

TINY_GAN = GanConfig(
    noise_dim=3, condition_width=8, generator_width=16, generator_layers=2, critic_width=16, critic_layers=1, set_size=8
)


def test_keras_round_trip_identical(tmp_path, tiny_spec):
    model = build_generator(tiny_spec, TINY_GAN)
    point = (15.45, 0.525, 10100.0)
    before = generate_events(model, point, 3, 1000, np.random.default_rng(1))
    save_generator(model, tmp_path / "gan.keras")
    loaded, stored_spec = load_generator(tmp_path / "gan.keras", tiny_spec)
    after = generate_events(loaded, point, 3, 1000, np.random.default_rng(1))
    np.testing.assert_array_equal(before, after)
    assert stored_spec.to_dict() == tiny_spec.to_dict()
    assert before.shape == (1000,)
    assert before.dtype == np.float32


def test_same_rng_state_same_events(tiny_spec):
    model = build_generator(tiny_spec, TINY_GAN)
    first = generate_events(model, (6.0, 0.0, 8000.0), 0, 300, np.random.default_rng(4), batch_size=128)
    second = generate_events(model, (6.0, 0.0, 8000.0), 0, 300, np.random.default_rng(4))
    np.testing.assert_allclose(first, second, rtol=1e-6)
    other = generate_events(model, (6.0, 0.0, 8000.0), 0, 300, np.random.default_rng(5))
    assert not np.allclose(first, other)


def test_spec_mismatch_names_both(tmp_path, tiny_spec):
    save_generator(build_generator(tiny_spec, TINY_GAN), tmp_path / "gan.keras")
    with pytest.raises(SpecMismatchError) as error:
        load_generator(tmp_path / "gan.keras", default_spec())
    assert "160 bins from 0 to 16 kNPE" in str(error.value)
    assert "800 bins from 0.4 to 16.4 kNPE" in str(error.value)


def test_regressor_file_is_not_generator(tmp_path, tiny_spec):
    tiny_regressor = RegressorConfig(num_blocks=1, width=8, num_heads=2, feed_forward_width=8, head_width=8)
    save_regressor(build_regressor(tiny_spec, tiny_regressor), tmp_path / "regressor.keras")
    with pytest.raises(InvalidInputError, match="is not a neuromct-tf GAN generator"):
        load_generator(tmp_path / "regressor.keras", tiny_spec)


def test_missing_file(tmp_path, tiny_spec):
    with pytest.raises(InvalidInputError, match="not found"):
        load_generator(tmp_path / "absent.keras", tiny_spec)


def test_critic_ignores_event_order(tiny_spec):
    critic = build_critic(tiny_spec, TINY_GAN)
    rng = np.random.default_rng(2)
    npe = rng.uniform(0.5, 12.0, size=(4, 8)).astype(np.float32)
    params = np.tile(np.array([[12.0, 0.3, 9000.0]], dtype=np.float32), (4, 1))
    source = np.array([0, 1, 3, 4], dtype=np.int32)
    shuffled = rng.permuted(npe, axis=1)
    scores = critic({"npe": npe, "params": params, "source": source}).numpy()
    assert scores.shape == (4,)
    np.testing.assert_allclose(critic({"npe": shuffled, "params": params, "source": source}).numpy(), scores, rtol=1e-6)


def test_surrogate_histogram_matches_numpy(tiny_spec):
    # With a kernel 100 times narrower than a bin and events at least a tenth of a bin from every
    # edge, each event lies inside one bin up to Phi(-10), so the smooth histogram is exact.
    generator = build_generator(tiny_spec, TINY_GAN)
    surrogate = GanSurrogate(generator, tiny_spec, num_samples=500, smoothing=0.001)
    edges = tiny_spec.binning.edges_array()
    rng = np.random.default_rng(3)
    npe = edges[rng.integers(0, 160, size=(2, 500))] + rng.uniform(0.01, 0.09, size=(2, 500))
    npe[1, :50] = 20.0  # above the range: ignored, the rest is normalised over the binning
    smooth = surrogate.smooth_histogram(tf.constant(npe, tf.float32)).numpy()
    for row in range(2):
        counts, _ = np.histogram(npe[row], bins=edges)
        np.testing.assert_allclose(smooth[row], counts / counts.sum(), atol=1e-6)


def test_surrogate_log_probabilities_and_gradient(tiny_spec):
    surrogate = GanSurrogate(build_generator(tiny_spec, TINY_GAN), tiny_spec, num_samples=400, seed=1)
    params = tf.constant([[12.0, 0.3, 9000.0], [20.0, 0.8, 11000.0]], tf.float32)
    source = tf.constant([0, 4], tf.int32)
    with tf.GradientTape() as tape:
        tape.watch(params)
        log_p = surrogate({"params": params, "source": source})
        target = tf.reduce_sum(log_p * tf.exp(tf.stop_gradient(log_p)))
    np.testing.assert_allclose(np.exp(log_p.numpy()).sum(axis=1), 1.0, rtol=1e-4)
    gradient = tape.gradient(target, params).numpy()
    assert np.all(np.isfinite(gradient))
    # The generator's output scales with LY, so the spectra move with it.
    assert np.all(gradient[:, 2] != 0.0)


def test_surrogate_fixed_noise_is_deterministic(tiny_spec):
    generator = build_generator(tiny_spec, TINY_GAN)
    inputs = {"params": tf.constant([[12.0, 0.3, 9000.0]]), "source": tf.constant([2])}
    first = GanSurrogate(generator, tiny_spec, num_samples=300, seed=4)(inputs).numpy()
    again = GanSurrogate(generator, tiny_spec, num_samples=300, seed=4)(inputs).numpy()
    other = GanSurrogate(generator, tiny_spec, num_samples=300, seed=5)(inputs).numpy()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_load_surrogate_detects_kind(tmp_path, tiny_spec):
    save_generator(build_generator(tiny_spec, TINY_GAN), tmp_path / "gan.keras")
    tiny_regressor = RegressorConfig(num_blocks=1, width=8, num_heads=2, feed_forward_width=8, head_width=8)
    save_regressor(build_regressor(tiny_spec, tiny_regressor), tmp_path / "regressor.keras")
    gan, _ = load_surrogate(tmp_path / "gan.keras", tiny_spec, num_samples=100)
    regressor, _ = load_surrogate(tmp_path / "regressor.keras", tiny_spec)
    assert isinstance(gan, GanSurrogate)
    assert gan.num_samples == 100
    assert not isinstance(regressor, GanSurrogate)
    with pytest.raises(SpecMismatchError):
        load_surrogate(tmp_path / "gan.keras", default_spec())


def test_invalid_sizes_rejected():
    with pytest.raises(InvalidInputError, match="set_size=0"):
        GanConfig(set_size=0)
