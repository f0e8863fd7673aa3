"""Interpolation baseline: trilinear interpolation of the training-grid spectra.

The surrogates are compared against this baseline. It needs no training, is
exact at the grid points, and its error between them shows how much the
spectra bend within one grid cell.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from neuromct_tf.data.histograms import GridHistograms
from neuromct_tf.errors import InvalidInputError
from neuromct_tf.specs.model import PARAMETER_NAMES, ProductGrid

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GridInterpolator:
    """Trilinear interpolation, in kB, fC and LY, of normalised spectra on a product grid.

    A query point inside a grid cell gets the weighted mean of the spectra at
    the cell's 8 corners, with weights linear in each parameter. The result
    is normalised because the weights sum to one.

    NOTE: spectra are interpolated bin by bin, so between two grid values of
    LY a peak is the blend of the two neighbouring peaks, not one peak at the
    shifted position. The error grows with the peak shift per grid step
    relative to the peak width.

    Attributes
    ----------
    axes : tuple of numpy.ndarray of float64
        Strictly increasing grid values of kB, fC and LY.
    spectra : numpy.ndarray of float64, shape (num_kB, num_fC, num_LY, num_sources, num_bins)
        Normalised spectrum of every grid point and source.
    """

    axes: tuple[np.ndarray, np.ndarray, np.ndarray]
    spectra: np.ndarray

    @classmethod
    def from_histograms(cls, histograms: GridHistograms, grid: ProductGrid) -> GridInterpolator:
        """Build the interpolator from the histograms of every point of a product grid.

        Rows of ``histograms`` are matched to grid points by grid name and
        point index. Rows of other grids are ignored, so the histograms of
        several grid files may be passed at once.

        Parameters
        ----------
        histograms : GridHistograms
            Must contain every point of ``grid``, each with entries in the binning for every source.
        grid : ProductGrid
            The grid the histograms were simulated on.

        Raises
        ------
        InvalidInputError
            If grid points are missing or repeated, if a row's parameters differ
            from its grid point, or if a (point, source) has no entries in the binning.
        """
        if not isinstance(grid, ProductGrid):
            raise InvalidInputError(
                f"grid {getattr(grid, 'name', grid)!r} is not a product grid; interpolation needs a grid of kB x fC x LY values"
            )
        rows = _rows_of_grid(histograms, grid)
        probabilities = histograms.probabilities()[rows]
        _check_entries(histograms.counts[rows], grid)

        num_sources, num_bins = probabilities.shape[1:]
        spectra = probabilities.reshape(grid.shape + (num_sources, num_bins))
        axes = tuple(np.asarray(values, dtype=np.float64) for values in grid.axes)
        for name, values in zip(PARAMETER_NAMES, axes):
            if values.size > 1 and not np.all(np.diff(values) > 0):
                raise InvalidInputError(f"grid {grid.name!r}: the {name} values {values.tolist()} are not strictly increasing")
        logger.info("interpolating grid %s of shape %s, %d sources, %d bins", grid.name, grid.shape, num_sources, num_bins)
        return cls(axes=axes, spectra=spectra)  # type: ignore[arg-type]

    @property
    def num_sources(self) -> int:
        """Number of sources."""
        return int(self.spectra.shape[3])

    @property
    def num_bins(self) -> int:
        """Number of NPE bins."""
        return int(self.spectra.shape[4])

    def predict(self, points, source_ids) -> np.ndarray:
        """Interpolate the spectrum of each query point and source.

        Parameters
        ----------
        points : array_like, shape (num_queries, 3)
            kB, fC and LY of each query, inside the grid's range of each parameter.
        source_ids : array_like of int, shape (num_queries,)
            Source id of each query (position in the spec's sources).

        Returns
        -------
        numpy.ndarray of float64, shape (num_queries, num_bins)
            Normalised spectra; exactly the grid spectrum at a grid point.

        Raises
        ------
        InvalidInputError
            For a wrong shape, a non-finite value, a value outside the grid's
            range, or an unknown source id.
        """
        points, source_ids = self._check_queries(points, source_ids)
        lower, fraction = [], []
        for axis, (name, values) in enumerate(zip(PARAMETER_NAMES, self.axes)):
            axis_lower, axis_fraction = _locate(values, points[:, axis], name)
            lower.append(axis_lower)
            fraction.append(axis_fraction)

        result = np.zeros((points.shape[0], self.num_bins))
        for corner in np.ndindex(2, 2, 2):
            weight = np.ones(points.shape[0])
            index = []
            for axis, step in enumerate(corner):
                weight *= fraction[axis] if step else 1.0 - fraction[axis]
                index.append(np.minimum(lower[axis] + step, self.axes[axis].size - 1))
            result += weight[:, None] * self.spectra[index[0], index[1], index[2], source_ids]
        return result

    def _check_queries(self, points, source_ids) -> tuple[np.ndarray, np.ndarray]:
        points = np.asarray(points, dtype=np.float64)
        source_ids = np.asarray(source_ids)
        if points.ndim != 2 or points.shape[1] != 3:
            raise InvalidInputError(f"query points have shape {points.shape}; give an array of shape (N, 3) with columns kB, fC, LY")
        if source_ids.shape != (points.shape[0],) or not np.issubdtype(source_ids.dtype, np.integer):
            raise InvalidInputError(
                f"source ids have shape {source_ids.shape} and type {source_ids.dtype}; give {points.shape[0]} integers, one per point"
            )
        if not np.all(np.isfinite(points)):
            raise InvalidInputError("query points contain NaN or infinite values; give finite kB, fC, LY")
        if source_ids.size and (source_ids.min() < 0 or source_ids.max() >= self.num_sources):
            bad = source_ids[(source_ids < 0) | (source_ids >= self.num_sources)][0]
            raise InvalidInputError(f"source id {bad} is out of range; the grid has sources 0 to {self.num_sources - 1}")
        return points, source_ids.astype(np.int64)


def _locate(values: np.ndarray, queries: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Return the index of the lower neighbour in ``values`` and the fraction of the way to the upper one."""
    low, high = values[0], values[-1]
    outside = (queries < low) | (queries > high)
    if np.any(outside):
        value = queries[outside][0]
        raise InvalidInputError(
            f"{name}={value:g} is outside the interpolation grid's range [{low:g}, {high:g}]; "
            "query inside the training grid or use a surrogate that extrapolates"
        )
    if values.size == 1:
        return np.zeros(queries.shape, dtype=np.int64), np.zeros(queries.shape)

    # The last cell is closed on the right, so the upper edge gets lower index size - 2 and fraction 1.
    lower = np.clip(np.searchsorted(values, queries, side="right") - 1, 0, values.size - 2)
    fraction = (queries - values[lower]) / (values[lower + 1] - values[lower])
    return lower, fraction


def _rows_of_grid(histograms: GridHistograms, grid: ProductGrid) -> np.ndarray:
    """Return, for each grid point in grid order, its row in ``histograms``."""
    in_grid = np.flatnonzero(np.asarray(histograms.grid, dtype=object) == grid.name)
    indices = histograms.point_index[in_grid]

    unique, counts = np.unique(indices, return_counts=True)
    if np.any(counts > 1):
        raise InvalidInputError(
            f"grid {grid.name!r}: point {unique[counts > 1][0]} appears {counts[counts > 1][0]} times in the histograms; "
            "histogram every file of the grid in one call to build_grid_histograms"
        )
    rows = np.full(grid.num_points, -1, dtype=np.int64)
    known = (indices >= 0) & (indices < grid.num_points)
    rows[indices[known]] = in_grid[known]

    missing = np.flatnonzero(rows < 0)
    if missing.size:
        raise InvalidInputError(
            f"{missing.size} of the {grid.num_points} points of grid {grid.name!r} are missing from the histograms "
            f"(first missing: point {missing[0]}); histogram all shards of the grid"
        )
    expected = grid.points()
    mismatch = ~np.all(np.isclose(histograms.points[rows], expected, rtol=1e-9, atol=1e-12), axis=1)
    if np.any(mismatch):
        first = int(np.flatnonzero(mismatch)[0])
        raise InvalidInputError(
            f"grid {grid.name!r}: point {first} is {histograms.points[rows[first]].tolist()} in the histograms "
            f"but {expected[first].tolist()} in the spec; use the spec the grid was simulated with"
        )
    return rows


def _check_entries(counts: np.ndarray, grid: ProductGrid) -> None:
    empty = np.argwhere(counts.sum(axis=-1) == 0)
    if empty.size:
        point, source = (int(v) for v in empty[0])
        raise InvalidInputError(
            f"grid {grid.name!r}: {len(empty)} (point, source) pairs have no entries in the binning, "
            f"the first is point {point}, source id {source}; simulate more events or widen the binning"
        )
