"""Tests of the trilinear interpolation baseline on synthetic grid histograms."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from neuromct_tf.data.histograms import GridHistograms
from neuromct_tf.errors import InvalidInputError
from neuromct_tf.models.interpolation import GridInterpolator
from neuromct_tf.specs import ProductGrid

# LY is not evenly spaced, so a mix-up of values and indices would show.
GRID = ProductGrid(name="training", events=100, axes=((6.0, 15.0, 24.0), (0.0, 0.5, 1.0), (8000.0, 9000.0, 12000.0)))
NUM_SOURCES = 2
NUM_BINS = 12


def make_histograms(counts: np.ndarray, grid: ProductGrid = GRID) -> GridHistograms:
    """Wrap counts of shape (num_points, num_sources, num_bins) in grid order as histograms."""
    num_points = counts.shape[0]
    return GridHistograms(
        points=grid.points()[:num_points],
        counts=counts.astype(np.int32),
        num_underflow=np.zeros(counts.shape[:2], dtype=np.int64),
        num_overflow=np.zeros(counts.shape[:2], dtype=np.int64),
        grid=(grid.name,) * num_points,
        point_index=np.arange(num_points, dtype=np.int64),
    )


def random_histograms(seed: int = 3) -> GridHistograms:
    rng = np.random.default_rng(seed)
    return make_histograms(rng.integers(1, 1000, size=(GRID.num_points, NUM_SOURCES, NUM_BINS)))


def linear_counts(points: np.ndarray) -> np.ndarray:
    """Counts linear in kB, fC and LY with the same total at every point, shape (num_points, 2, 12).

    The slopes sum to zero over the bins, so the normalised spectra are linear in the parameters too.
    """
    rng = np.random.default_rng(5)
    base = rng.integers(500, 1000, size=(NUM_SOURCES, NUM_BINS)).astype(np.float64)
    slopes = rng.integers(-20, 21, size=(3, NUM_SOURCES, NUM_BINS)).astype(np.float64)
    slopes[..., -1] = -slopes[..., :-1].sum(axis=-1)
    # Scaled so that each term is a multiple of the slope at the grid values.
    scaled = np.column_stack([(points[:, 0] - 6.0) / 9.0, 2.0 * points[:, 1], (points[:, 2] - 8000.0) / 1000.0])
    return base + np.einsum("pk,ksb->psb", scaled, slopes)


def test_interpolator_reproduces_grid_points():
    histograms = random_histograms()
    interpolator = GridInterpolator.from_histograms(histograms, GRID)
    points = np.repeat(histograms.points, NUM_SOURCES, axis=0)
    source_ids = np.tile(np.arange(NUM_SOURCES), GRID.num_points)

    predicted = interpolator.predict(points, source_ids)

    expected = histograms.probabilities().reshape(-1, NUM_BINS)
    np.testing.assert_array_equal(predicted, expected)


def test_midpoint_is_mean_of_neighbours():
    histograms = random_histograms()
    interpolator = GridInterpolator.from_histograms(histograms, GRID)
    spectra = histograms.probabilities().reshape(3, 3, 3, NUM_SOURCES, NUM_BINS)

    edge_midpoint = interpolator.predict(np.array([[15.0, 0.5, 10500.0]]), np.array([1]))
    cell_centre = interpolator.predict(np.array([[10.5, 0.25, 8500.0]]), np.array([0]))

    np.testing.assert_allclose(edge_midpoint[0], spectra[1, 1, 1:3, 1].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(cell_centre[0], spectra[0:2, 0:2, 0:2, 0].mean(axis=(0, 1, 2)), rtol=1e-12)


def test_linear_spectra_interpolated_exactly():
    counts = linear_counts(GRID.points())
    assert np.all(counts == np.round(counts)), "grid counts must be integers to fit in GridHistograms"
    assert np.all(counts > 0), "grid counts must be positive"
    interpolator = GridInterpolator.from_histograms(make_histograms(np.round(counts)), GRID)
    rng = np.random.default_rng(11)
    queries = rng.uniform([6.0, 0.0, 8000.0], [24.0, 1.0, 12000.0], size=(50, 3))
    source_ids = rng.integers(0, NUM_SOURCES, size=50)

    predicted = interpolator.predict(queries, source_ids)

    expected = linear_counts(queries)[np.arange(50), source_ids]
    expected /= expected.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(predicted, expected, rtol=1e-12)


def test_range_edges_are_accepted():
    histograms = random_histograms()
    interpolator = GridInterpolator.from_histograms(histograms, GRID)

    predicted = interpolator.predict(np.array([[24.0, 1.0, 12000.0], [6.0, 0.0, 8000.0]]), np.array([0, 1]))

    np.testing.assert_array_equal(predicted[0], histograms.probabilities()[-1, 0])
    np.testing.assert_array_equal(predicted[1], histograms.probabilities()[0, 1])


def test_query_outside_range_rejected():
    interpolator = GridInterpolator.from_histograms(random_histograms(), GRID)

    with pytest.raises(InvalidInputError, match=r"LY=12500 is outside .* \[8000, 12000\]"):
        interpolator.predict(np.array([[10.0, 0.5, 12500.0]]), np.array([0]))
    with pytest.raises(InvalidInputError, match=r"kB=5.9 is outside"):
        interpolator.predict(np.array([[5.9, 0.5, 9000.0]]), np.array([0]))


def test_unknown_source_id_rejected():
    interpolator = GridInterpolator.from_histograms(random_histograms(), GRID)

    with pytest.raises(InvalidInputError, match="source id 2"):
        interpolator.predict(np.array([[10.0, 0.5, 9000.0]]), np.array([2]))


def test_missing_grid_points_rejected():
    counts = np.ones((GRID.num_points - 4, NUM_SOURCES, NUM_BINS))

    with pytest.raises(InvalidInputError, match="4 of the 27 points"):
        GridInterpolator.from_histograms(make_histograms(counts), GRID)


def test_shuffled_rows_matched_by_index():
    histograms = random_histograms()
    order = np.random.default_rng(2).permutation(GRID.num_points)
    interpolator = GridInterpolator.from_histograms(histograms.select(order), GRID)

    for index, point in enumerate(itertools.islice(GRID.points(), 0, None, 5)):
        predicted = interpolator.predict(point[None, :], np.array([1]))
        np.testing.assert_array_equal(predicted[0], histograms.probabilities()[5 * index, 1])
