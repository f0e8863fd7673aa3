"""The whole simulation chain: spectra respond to the parameters as physics predicts, reproducibly."""

from __future__ import annotations

import numpy as np
import pytest
import uproot

from neuromct_tf.errors import InvalidInputError
from neuromct_tf.sim.runner import (
    parse_shard,
    random_stream,
    shard_points,
    simulate_grid,
    simulate_triggers,
)

NOMINAL = (15.45, 0.525, 10100.0)


def cs137_peak(point, num_events=20000, seed=1):
    """Return the mean and standard deviation of the Cs137 full-absorption peak, in kNPE.

    The peak is selected by a window of +-3 standard deviations found iteratively,
    which excludes the Compton continuum of events whose gamma escaped partly.
    """
    npe, _ = simulate_triggers("Cs137", point, num_events, random_stream(seed, "test", 0, 0))
    centre = np.percentile(npe, 90)
    width = 0.05 * centre
    for _ in range(10):
        window = npe[np.abs(npe - centre) < 3 * width]
        centre, width = window.mean(), window.std()
    return centre, width, window.size


def mean_npe(source, point, num_events=4000, seed=2):
    npe, _ = simulate_triggers(source, point, num_events, random_stream(seed, "test", 0, 0))
    return npe.mean(), npe.std() / np.sqrt(npe.size)


def test_cs137_resolution_at_nominal():
    centre, width, size = cs137_peak(NOMINAL)
    resolution = width / centre
    # Photo-electron statistics and the constant term give 3.5 %; the event-by-event spread of
    # Birks quenching over ~18 Compton electrons per gamma adds 2.3 % in quadrature, 4.2 % in all
    # (docs/physics/spectra.rst). The standard error of a width from ~15k entries is 0.6 % of it,
    # or 0.03 points. The window of 0.3 points also covers the choice of the peak window.
    assert 0.039 < resolution < 0.045, resolution
    assert size > 10000


@pytest.mark.parametrize(
    "source, index, higher_value, lower_value",
    [
        ("K40", 2, 11000.0, 9000.0),  # more light yield, more NPE
        ("K40", 0, 8.0, 22.0),  # smaller kB, less quenching, more NPE
        ("Co60", 1, 1.0, 0.0),  # more Cherenkov light, more NPE
    ],
)
def test_spectra_move_the_right_way(source, index, higher_value, lower_value):
    high_point, low_point = list(NOMINAL), list(NOMINAL)
    high_point[index], low_point[index] = higher_value, lower_value
    high_mean, high_error = mean_npe(source, high_point)
    low_mean, low_error = mean_npe(source, low_point)
    # Same seed for both points, so much of the statistical noise cancels; 5 combined sigmas.
    assert high_mean - low_mean > 5 * np.hypot(high_error, low_error)


def test_cs137_nearly_insensitive_to_cherenkov():
    with_cherenkov, _, _ = cs137_peak((15.45, 1.0, 10100.0))
    without, _, _ = cs137_peak((15.45, 0.0, 10100.0))
    # Compton electrons of a 662 keV gamma are mostly below the 0.18 MeV Cherenkov threshold
    # or just above it: the peak moves by well under 2 % over the whole fC range.
    assert 0.0 <= (with_cherenkov - without) / without < 0.02


def test_peak_scales_with_light_yield():
    low, _, _ = cs137_peak((15.45, 0.525, 8000.0))
    high, _, _ = cs137_peak((15.45, 0.525, 12000.0))
    # Cherenkov light is a few per cent and does not scale with LY, so the ratio is slightly below 1.5.
    assert 1.40 < high / low < 1.51


def test_same_seed_same_spectrum():
    first, _ = simulate_triggers("AmBe", NOMINAL, 500, random_stream(5, "training", 3, 3))
    second, _ = simulate_triggers("AmBe", NOMINAL, 500, random_stream(5, "training", 3, 3))
    other, _ = simulate_triggers("AmBe", NOMINAL, 500, random_stream(5, "training", 4, 3))
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


def test_neutron_source_two_triggers_per_decay():
    npe, kind = simulate_triggers("AmC", NOMINAL, 300, random_stream(1, "test", 0, 4))
    assert npe.shape == (600,)
    np.testing.assert_array_equal(kind, np.tile([0, 1], 300))


def read_tree(path):
    with uproot.open(path) as file:
        return file["mc"].arrays(library="np")


def test_shards_concatenate_to_whole_grid(tmp_path, tiny_spec):
    whole = simulate_grid(tiny_spec, "validation", tmp_path / "whole", seed=3, num_events=50)
    parts = [
        simulate_grid(tiny_spec, "validation", tmp_path / "shards", seed=3, num_events=50, shard=(i, 2))
        for i in (1, 2)
    ]
    expected = read_tree(whole.paths[0])
    shards = [read_tree(part.paths[0]) for part in parts]
    for branch, values in expected.items():
        np.testing.assert_array_equal(np.concatenate([s[branch] for s in shards]), values)
    assert [p.paths[0].name for p in parts] == ["validation_shard001of002.root", "validation_shard002of002.root"]


def test_same_seed_same_file(tmp_path, tiny_spec):
    first = simulate_grid(tiny_spec, "validation", tmp_path / "a", seed=8, num_events=40)
    second = simulate_grid(tiny_spec, "validation", tmp_path / "b", seed=8, num_events=40, num_jobs=2)
    assert first.paths[0].read_bytes() == second.paths[0].read_bytes()


def test_grid_file_records_points(tmp_path, tiny_spec):
    summary = simulate_grid(tiny_spec, "validation", tmp_path, seed=1, num_events=30)
    arrays = read_tree(summary.paths[0])
    np.testing.assert_array_equal(np.unique(arrays["point"]), [0, 1])
    np.testing.assert_allclose(np.unique(arrays["fC"]), [0.25, 0.75])
    # 3 gamma sources x 30 triggers + 2 neutron sources x 60 triggers, per point.
    assert summary.num_triggers == 2 * (3 * 30 + 2 * 60)


@pytest.mark.parametrize("text", ["0/4", "5/4", "1-4", "a/b", "2"])
def test_malformed_shard_rejected(text):
    with pytest.raises(InvalidInputError, match="shard"):
        parse_shard(text)


def test_shards_cover_points_once():
    covered = [i for shard in range(1, 8) for i in shard_points(100, (shard, 7))]
    assert covered == list(range(100))


def test_chunks_have_independent_streams(monkeypatch):
    from neuromct_tf.sim import runner

    monkeypatch.setattr(runner, "CHUNK_EVENTS", 100)
    npe, kind = runner.simulate_chunked("Cs137", NOMINAL, 250, 3, "test", 0, 0)
    assert npe.shape == (250,)
    assert kind.shape == (250,)
    first, _ = simulate_triggers("Cs137", NOMINAL, 100, random_stream(3, "test", 0, 0, 0))
    second, _ = simulate_triggers("Cs137", NOMINAL, 100, random_stream(3, "test", 0, 0, 1))
    np.testing.assert_array_equal(npe[:100], first)
    np.testing.assert_array_equal(npe[100:200], second)
