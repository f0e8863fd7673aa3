"""Histograms of MC grid files: counts match the entries, shards merge, and the cache is keyed by the inputs."""

from __future__ import annotations

import numpy as np
import pytest
import uproot

from neuromct_tf.data.histograms import build_grid_histograms
from neuromct_tf.errors import InvalidInputError, SpecMismatchError
from neuromct_tf.sim.runner import simulate_grid
from neuromct_tf.specs import default_spec


def test_counts_match_entries(tiny_grids):
    spec = tiny_grids["spec"]
    histograms = build_grid_histograms([tiny_grids["validation"]], spec)
    with uproot.open(tiny_grids["validation"]) as file:
        arrays = file["mc"].arrays(library="np")
    assert histograms.num_points == 2
    for row, point_index in enumerate(histograms.point_index):
        for source_id in range(len(spec.sources)):
            selected = arrays["npe"][(arrays["point"] == point_index) & (arrays["source"] == source_id)]
            expected, _ = np.histogram(selected.astype(np.float64), bins=spec.binning.edges_array())
            np.testing.assert_array_equal(histograms.counts[row, source_id], expected)
            assert histograms.num_overflow[row, source_id] == np.count_nonzero(selected >= spec.binning.high)
    np.testing.assert_allclose(histograms.points[:, 1], [0.25, 0.75])
    np.testing.assert_allclose(histograms.probabilities().sum(axis=-1), 1.0)


def test_shards_merge_into_one_grid(tmp_path, tiny_spec, tiny_grids):
    shards = [simulate_grid(tiny_spec, "training", tmp_path, seed=11, shard=(i, 3)).paths[0] for i in (1, 2, 3)]
    merged = build_grid_histograms(shards, tiny_spec)
    whole = build_grid_histograms([tiny_grids["training"]], tiny_spec)
    # Same seed and grid as the session fixture, so the shards hold exactly its entries.
    np.testing.assert_array_equal(merged.counts, whole.counts)
    np.testing.assert_array_equal(merged.point_index, np.arange(27))


def test_cache_reused_and_invalidated(tmp_path, tiny_spec):
    path = simulate_grid(tiny_spec, "validation", tmp_path / "grid", seed=1, num_events=30).paths[0]
    cache = tmp_path / "cache"
    first = build_grid_histograms([path], tiny_spec, cache_dir=cache)
    files = list(cache.glob("histograms-*.npz"))
    assert len(files) == 1
    second = build_grid_histograms([path], tiny_spec, cache_dir=cache)
    np.testing.assert_array_equal(first.counts, second.counts)
    assert second.grid == ("validation", "validation")

    # A new file under the same name changes size or modification time, so it gets a new cache entry.
    simulate_grid(tiny_spec, "validation", tmp_path / "grid", seed=2, num_events=31, overwrite=True)
    third = build_grid_histograms([path], tiny_spec, cache_dir=cache)
    assert len(list(cache.glob("histograms-*.npz"))) == 2
    assert third.counts.sum() != first.counts.sum()


def test_other_spec_rejected(tiny_grids):
    with pytest.raises(SpecMismatchError):
        build_grid_histograms([tiny_grids["validation"]], default_spec())


def test_no_files_rejected(tiny_spec):
    with pytest.raises(InvalidInputError, match="no MC grid file"):
        build_grid_histograms([], tiny_spec)
