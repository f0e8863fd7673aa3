"""Data specs: the default numbers, user overrides and validation errors."""

from __future__ import annotations

import numpy as np
import pytest

from neuromct_tf.errors import InvalidInputError, InvalidSpecError, SpecMismatchError
from neuromct_tf.specs import default_spec, load_spec


def write_spec(tmp_path, text: str):
    path = tmp_path / "user.yaml"
    path.write_text(text)
    return path


def test_default_parameter_box_and_nominal():
    spec = default_spec()
    np.testing.assert_allclose(spec.box(), [[6, 24], [0, 1], [8000, 12000]])
    np.testing.assert_allclose(spec.nominal(), [15.45, 0.525, 10100])
    assert spec.sources == ("Cs137", "K40", "Co60", "AmBe", "AmC")
    assert spec.source_id("AmC") == 4


def test_default_binning_800_bins():
    binning = default_spec().binning
    assert binning.num_bins == 800
    assert binning.low == pytest.approx(0.4)
    assert binning.high == pytest.approx(16.4)
    np.testing.assert_allclose(np.diff(binning.edges_array()), 0.02, rtol=1e-9)


def test_default_training_grid_values():
    grid = default_spec().grid("training")
    assert grid.num_points == 9261
    np.testing.assert_allclose(grid.axes[0], 6 + 0.9 * np.arange(21))
    np.testing.assert_allclose(grid.axes[1], 0.05 * np.arange(21), atol=1e-12)
    np.testing.assert_allclose(grid.axes[2], 8000 + 200 * np.arange(21))
    points = grid.points()
    assert points.shape == (9261, 3)
    # kB varies slowest and LY fastest.
    np.testing.assert_allclose(points[1], [6.0, 0.0, 8200.0])
    np.testing.assert_allclose(points[21 * 21], [6.9, 0.0, 8000.0])


@pytest.mark.parametrize(
    "name, starts, steps",
    [("validation", (7.35, 0.075, 8300), (1.8, 0.1, 400)), ("testing1", (6.45, 0.025, 8100), (1.8, 0.1, 400))],
)
def test_default_ten_point_grids(name, starts, steps):
    grid = default_spec().grid(name)
    assert grid.shape == (10, 10, 10)
    for axis, start, step in zip(grid.axes, starts, steps):
        np.testing.assert_allclose(axis, start + step * np.arange(10), rtol=1e-12)


def test_default_testing2_exposures():
    grid = default_spec().grid("testing2")
    assert grid.exposures == (1000, 2000, 5000, 10000, 25000)
    assert grid.num_datasets == 1000
    assert grid.num_points == 5000
    np.testing.assert_allclose(grid.points()[0], [15.45, 0.525, 10100])
    assert grid.events_per_point()[999] == 1000
    assert grid.events_per_point()[1000] == 2000


def test_user_spec_overrides_axes(tiny_spec):
    grid = tiny_spec.grid("training")
    assert grid.shape == (3, 3, 3)
    assert grid.events == 300
    assert tiny_spec.binning.num_bins == 160
    # Keys the user file does not mention keep their default values.
    assert tiny_spec.grid("testing1").shape == (10, 10, 10)
    assert tiny_spec.parameter("LY").nominal == 10100


def test_user_spec_explicit_edges(tmp_path):
    spec = load_spec(write_spec(tmp_path, "binning: {edges: [0.5, 1.0, 2.0, 4.0]}"))
    assert spec.binning.num_bins == 3
    assert not spec.binning.is_uniform()


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("binning: {low: 0.4, high: 16.4, num_bins: 800, colour: red}", ["binning.colour", "unknown key"]),
        ("extra: 1", ["extra", "unknown key"]),
        ("grids: {training: {axes: {kB: {values: []}}}}", ["grids.training.axes.kB", "empty"]),
        ("grids: {training: {axes: {kB: {start: 6, step: 1, num: 0}}}}", ["grids.training.axes.kB", "empty"]),
        ("grids: {training: {axes: {kB: {values: [6, 30]}}}}", ["grids.training.axes.kB", "30", "outside"]),
        ("binning: {edges: [1.0, 3.0, 2.0]}", ["binning.edges", "strictly increasing"]),
        ("binning: {low: 5, high: 1}", ["binning", "increasing"]),
        ("parameters: {kB: {nominal: 40}}", ["parameters.kB.nominal", "outside"]),
        ("sources: []", ["sources", "non-empty"]),
        ("grids: {training: {axes: {kB: {values: [6], start: 6}}}}", ["grids.training.axes.kB", "either"]),
        ("grids: {mine: {events: 10}}", ["grids.mine", "axes"]),
    ],
)
def test_invalid_spec_names_key_and_reason(tmp_path, text, fragments):
    path = write_spec(tmp_path, text)
    with pytest.raises(InvalidSpecError) as error:
        load_spec(path)
    message = str(error.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_spec_file_not_yaml(tmp_path):
    path = write_spec(tmp_path, "grids: [unclosed")
    with pytest.raises(InvalidSpecError, match="not valid YAML"):
        load_spec(path)


def test_spec_file_missing(tmp_path):
    with pytest.raises(InvalidSpecError, match="not found"):
        load_spec(tmp_path / "absent.yaml")


def test_spec_round_trip_through_dict(tiny_spec):
    from neuromct_tf.specs.loading import spec_from_dict

    assert spec_from_dict(tiny_spec.to_dict(), origin="test") == tiny_spec


def test_compatibility_ignores_grids(tiny_spec):
    default_with_tiny_binning = load_spec(None)
    tiny_spec.check_compatible(tiny_spec, what="same")
    with pytest.raises(SpecMismatchError, match="binning"):
        default_with_tiny_binning.check_compatible(tiny_spec, what="model.keras")


def test_compatibility_box_and_sources(tmp_path):
    base = default_spec()
    wider = load_spec(write_spec(tmp_path, "parameters: {kB: {min: 5}}"))
    with pytest.raises(SpecMismatchError, match=r"kB box \[5, 24\]"):
        base.check_compatible(wider, what="file.root")
    fewer = load_spec(write_spec(tmp_path, "sources: [Cs137, K40]"))
    with pytest.raises(SpecMismatchError, match="sources"):
        base.check_compatible(fewer, what="file.root")


def test_point_outside_box_rejected():
    with pytest.raises(InvalidInputError, match=r"kB=30 is outside the parameter box \[6, 24\]"):
        default_spec().check_point([30, 0.5, 10000])


def test_unknown_source_lists_known():
    with pytest.raises(InvalidInputError, match="known sources: Cs137, K40, Co60, AmBe, AmC"):
        default_spec().source_id("Na22")


def test_point_list_grid(tmp_path):
    spec = load_spec(write_spec(tmp_path, "grids: {few: {events: 50, points: [[7, 0.1, 9000], nominal]}}"))
    grid = spec.grid("few")
    np.testing.assert_allclose(grid.points(), [[7, 0.1, 9000], [15.45, 0.525, 10100]])
    np.testing.assert_array_equal(grid.events_per_point(), [50, 50])


def test_point_list_outside_box(tmp_path):
    with pytest.raises(InvalidSpecError, match=r"grids.few.points\[0\]: LY=5000 is outside"):
        load_spec(write_spec(tmp_path, "grids: {few: {points: [[7, 0.1, 5000]]}}"))


def test_default_reference_grid():
    grid = default_spec().grid("reference")
    assert grid.events == 1_000_000
    testing1 = default_spec().grid("testing1")
    # Every reference point is a testing1 point.
    for point in grid.points():
        for value, axis in zip(point, testing1.axes):
            assert np.isclose(axis, value).any()
