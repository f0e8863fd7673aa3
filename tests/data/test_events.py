"""Per-event subsample of MC grid files: complete blocks, independent of the chunk size, cached."""

from __future__ import annotations

import numpy as np
import pytest
import uproot

from neuromct_tf.data.events import read_event_sets
from neuromct_tf.errors import InvalidInputError


@pytest.fixture(scope="module")
def tiny_tree(tiny_grids):
    with uproot.open(tiny_grids["training"]) as file:
        return file["mc"].arrays(["npe", "source", "point"], library="np")


def test_one_block_per_point_and_source(tiny_grids, tiny_tree):
    events = read_event_sets([tiny_grids["training"]], tiny_grids["spec"], events_per_block=64, seed=1)
    # 27 points x 5 sources of the tiny training grid.
    assert events.num_blocks == 135
    assert events.npe.shape == (135, 64)
    keys = tiny_tree["point"].astype(np.int64) * 5 + tiny_tree["source"]
    expected = np.bincount(keys, minlength=135)
    np.testing.assert_array_equal(np.sort(events.num_triggers), np.sort(expected))


def test_kept_events_come_from_their_block(tiny_grids, tiny_tree):
    spec = tiny_grids["spec"]
    events = read_event_sets([tiny_grids["training"]], spec, events_per_block=64, seed=1)
    grid_points = spec.grid("training").points().astype(np.float32)
    for block in (0, 57, 134):
        point = int(np.flatnonzero(np.all(grid_points == events.params[block], axis=1))[0])
        in_block = (tiny_tree["point"] == point) & (tiny_tree["source"] == events.source[block])
        assert np.isin(events.npe[block], tiny_tree["npe"][in_block]).all()
        # Drawn without replacement from 300 or more triggers: no trigger is kept twice.
        assert np.unique(events.npe[block]).size == 64


def test_subsample_independent_of_chunks(tiny_grids):
    spec = tiny_grids["spec"]
    whole = read_event_sets([tiny_grids["training"]], spec, events_per_block=32, seed=3)
    chunked = read_event_sets([tiny_grids["training"]], spec, events_per_block=32, seed=3, step_size=777)
    np.testing.assert_array_equal(whole.npe, chunked.npe)
    np.testing.assert_array_equal(whole.params, chunked.params)
    other_seed = read_event_sets([tiny_grids["training"]], spec, events_per_block=32, seed=4)
    assert not np.array_equal(whole.npe, other_seed.npe)


def test_cache_returns_same_subsample(tiny_grids, tmp_path):
    spec = tiny_grids["spec"]
    first = read_event_sets([tiny_grids["training"]], spec, events_per_block=16, seed=2, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("events-*.npz"))) == 1
    second = read_event_sets([tiny_grids["training"]], spec, events_per_block=16, seed=2, cache_dir=tmp_path)
    np.testing.assert_array_equal(first.npe, second.npe)
    np.testing.assert_array_equal(first.source, second.source)


def test_small_block_drawn_with_replacement(tiny_grids):
    # Blocks of the tiny grid have 300 to 600 triggers; 1000 kept triggers need repeats.
    events = read_event_sets([tiny_grids["training"]], tiny_grids["spec"], events_per_block=1000, seed=1)
    assert events.npe.shape == (135, 1000)
    assert np.unique(events.npe[0]).size <= events.num_triggers[0]


def test_no_files_rejected(tiny_grids):
    with pytest.raises(InvalidInputError, match="no MC grid file given"):
        read_event_sets([], tiny_grids["spec"], events_per_block=16)
