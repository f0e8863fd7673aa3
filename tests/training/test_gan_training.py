"""GAN training: it learns, it resumes where it stopped, and it rejects unusable inputs."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tensorflow as tf

from neuromct_tf.data.events import read_event_sets
from neuromct_tf.data.histograms import build_grid_histograms
from neuromct_tf.errors import InvalidInputError
from neuromct_tf.models.gan import GanConfig, build_generator, load_generator
from neuromct_tf.training.gan import GanTrainingConfig, ValidationScorer, train_gan

TINY_GAN = GanConfig(
    noise_dim=4, condition_width=8, generator_width=32, generator_layers=2, critic_width=64, critic_layers=2, set_size=16
)
TINY_TRAINING = GanTrainingConfig(
    epochs=4, steps_per_epoch=60, batch_size=512, critic_steps=3, generator_learning_rate=2e-3,
    critic_learning_rate=2e-3, validation_events=2000, seed=5,
)


@pytest.fixture(scope="module")
def gan_data(tiny_grids):
    spec = tiny_grids["spec"]
    return (
        read_event_sets([tiny_grids["training"]], spec, events_per_block=128, seed=5),
        build_grid_histograms([tiny_grids["validation"]], spec),
    )


def validation_w1(generator, validation, spec):
    scorer = ValidationScorer(validation, spec, num_points=100, num_events=5000, noise_dim=4, seed=9)
    return scorer.score(tf.function(lambda n, p, s: generator({"noise": n, "params": p, "source": s})))


def test_training_beats_untrained(tmp_path, tiny_grids, gan_data):
    spec = tiny_grids["spec"]
    train, validation = gan_data
    untrained = build_generator(spec, TINY_GAN)
    summary = train_gan(train, validation, spec, tmp_path / "gan.keras", TINY_GAN, TINY_TRAINING)
    trained, _ = load_generator(summary.output, spec)

    untrained_w1 = validation_w1(untrained, validation, spec)
    trained_w1 = validation_w1(trained, validation, spec)
    # The untrained generator puts every event near the centre of the range (W1 of several kNPE).
    # The held-out spectra have 300 events, whose own W1 noise is below 0.1 kNPE, so halving the
    # distance is far outside the noise.
    assert untrained_w1 > 1.0
    assert trained_w1 < 0.5 * untrained_w1
    assert summary.best_validation_w1 < 0.5 * untrained_w1
    assert summary.epochs_run == TINY_TRAINING.epochs


def read_log(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_resume_continues_from_saved_epoch(tmp_path, tiny_grids, gan_data):
    spec = tiny_grids["spec"]
    train, validation = gan_data
    config = GanTrainingConfig(
        epochs=4, steps_per_epoch=10, batch_size=256, critic_steps=2, validation_events=500, seed=6
    )
    output = tmp_path / "gan.keras"

    class Killed(Exception):
        pass

    def kill_after_second(record):
        if record.epoch == 2:
            raise Killed

    with pytest.raises(Killed):
        train_gan(train, validation, spec, output, TINY_GAN, config, epoch_fn=kill_after_second)
    epochs_seen = []
    resumed = train_gan(
        train, validation, spec, output, TINY_GAN, config, resume=True,
        epoch_fn=lambda record: epochs_seen.append(record.epoch),
    )
    assert epochs_seen == [3, 4]
    assert [int(row["epoch"]) for row in read_log(output.with_suffix(".csv"))] == [1, 2, 3, 4]

    straight = train_gan(train, validation, spec, tmp_path / "straight.keras", TINY_GAN, config)
    # Same seeds and the same stateless draws per step: the resumed run ends where the
    # uninterrupted one does, up to floating-point differences of multi-threaded CPU kernels.
    assert resumed.best_validation_w1 == pytest.approx(straight.best_validation_w1, rel=1e-3)
    resumed_log = read_log(output.with_suffix(".csv"))
    straight_log = read_log(tmp_path / "straight.csv")
    for mine, theirs in zip(resumed_log, straight_log):
        assert float(mine["validation_w1"]) == pytest.approx(float(theirs["validation_w1"]), rel=1e-3)


def test_resume_without_checkpoint(tmp_path, tiny_grids, gan_data):
    train, validation = gan_data
    with pytest.raises(InvalidInputError, match="no checkpoint to resume"):
        train_gan(train, validation, tiny_grids["spec"], tmp_path / "gan.keras", TINY_GAN, TINY_TRAINING, resume=True)


def test_set_larger_than_subsample(tmp_path, tiny_grids):
    spec = tiny_grids["spec"]
    train = read_event_sets([tiny_grids["training"]], spec, events_per_block=8, seed=5)
    validation = build_grid_histograms([tiny_grids["validation"]], spec)
    with pytest.raises(InvalidInputError, match="fewer than the critic's set size 16"):
        train_gan(train, validation, spec, tmp_path / "gan.keras", TINY_GAN, TINY_TRAINING)


def test_batch_not_multiple_of_set(tmp_path, tiny_grids, gan_data):
    train, validation = gan_data
    config = GanTrainingConfig(batch_size=100)
    with pytest.raises(InvalidInputError, match="multiple of the set size 16"):
        train_gan(train, validation, tiny_grids["spec"], tmp_path / "gan.keras", TINY_GAN, config)


def test_training_deterministic_given_seed(tmp_path, tiny_grids, gan_data):
    spec = tiny_grids["spec"]
    train, validation = gan_data
    config = GanTrainingConfig(epochs=1, steps_per_epoch=5, batch_size=256, critic_steps=2, validation_events=500, seed=7)
    first = train_gan(train, validation, spec, tmp_path / "a.keras", TINY_GAN, config)
    second = train_gan(train, validation, spec, tmp_path / "b.keras", TINY_GAN, config)
    a, _ = load_generator(first.output, spec)
    b, _ = load_generator(second.output, spec)
    for left, right in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(left, right, rtol=1e-5, atol=1e-7)
