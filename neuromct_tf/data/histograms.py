"""Histograms of MC grid files: one NPE spectrum per (point, source) in the spec's binning.

:func:`build_grid_histograms` streams through MC grid files with uproot and
fills a three-dimensional boost-histogram (point, source, NPE). Memory
therefore contains one chunk of entries and the histogram (about 300 MB of
64-bit counts for the training grid), never the whole grid. The result can be cached on disk,
keyed by the input files (path, size, modification time) and the spec, so a
second run skips the pass over ROOT.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import boost_histogram as bh
import numpy as np

from neuromct_tf.errors import InvalidInputError
from neuromct_tf.io.atomic import atomic_output
from neuromct_tf.io.mcgrid import open_mc_grid
from neuromct_tf.io.rootfile import reading
from neuromct_tf.specs import DataSpec

logger = logging.getLogger(__name__)

_BRANCHES = ("npe", "kB", "fC", "LY", "source", "point")
_CACHE_VERSION = 1


@dataclass(frozen=True)
class GridHistograms:
    """Binned spectra of every (point, source) of one or more MC grid files.

    Attributes
    ----------
    points : numpy.ndarray of float64, shape (num_points, 3)
        kB, fC and LY of each point.
    counts : numpy.ndarray of int32, shape (num_points, num_sources, num_bins)
        Entries per bin of the spec's binning.
    num_underflow, num_overflow : numpy.ndarray of int64, shape (num_points, num_sources)
        Entries below and above the binning.
    grid : tuple of str
        Grid name of each point.
    point_index : numpy.ndarray of int64, shape (num_points,)
        Index of each point in its grid.
    """

    points: np.ndarray
    counts: np.ndarray
    num_underflow: np.ndarray
    num_overflow: np.ndarray
    grid: tuple[str, ...]
    point_index: np.ndarray

    @property
    def num_points(self) -> int:
        """Number of points."""
        return int(self.points.shape[0])

    def probabilities(self) -> np.ndarray:
        """Return the spectra normalised over the binning, float64 of shape (num_points, num_sources, num_bins).

        A (point, source) without entries in range gives a row of zeros.
        """
        totals = self.counts.sum(axis=-1, keepdims=True, dtype=np.float64)
        return np.divide(self.counts, totals, out=np.zeros(self.counts.shape), where=totals > 0)

    def select(self, mask: np.ndarray) -> GridHistograms:
        """Return the points where the boolean or index array ``mask`` selects them."""
        return GridHistograms(
            points=self.points[mask],
            counts=self.counts[mask],
            num_underflow=self.num_underflow[mask],
            num_overflow=self.num_overflow[mask],
            grid=tuple(np.asarray(self.grid, dtype=object)[mask]),
            point_index=self.point_index[mask],
        )


ProgressFn = Callable[[int], None]


def build_grid_histograms(
    paths: Sequence[str | Path],
    spec: DataSpec,
    cache_dir: str | Path | None = None,
    step_size: int = 2_000_000,
    progress_fn: ProgressFn | None = None,
) -> GridHistograms:
    """Histogram MC grid files in the spec's binning, or load the histograms from the cache.

    Parameters
    ----------
    paths : sequence of path
        MC grid files; shards of one grid, or files of several grids.
    spec : DataSpec
        Gives the sources and the binning; each file's recorded spec must be compatible.
    cache_dir : path, optional
        Directory of the cache; no caching when ``None``.
    step_size : int
        Entries read per chunk.
    progress_fn : callable, optional
        Called with the number of entries after each chunk.

    Raises
    ------
    InvalidInputError
        For a file that is not a readable MC grid file, or files without any entry.
    SpecMismatchError
        For a file made with another binning, box or source list.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise InvalidInputError("no MC grid file given; pass at least one file written by 'neuromct-tf simulate'")
    opened = [open_mc_grid(path, spec, _BRANCHES) for path in paths]
    cache_path = None
    if cache_dir is not None:
        cache_path = Path(cache_dir) / f"histograms-{_cache_key(paths, spec)}.npz"
        if cache_path.exists():
            logger.info("loading histograms from the cache %s", cache_path)
            return _load_cache(cache_path)

    groups: dict[str, list] = {}
    for tree, info in opened:
        grid = str(info.metadata.details.get("grid", "unknown")) if info.metadata is not None else "unknown"
        groups.setdefault(grid, []).append((tree, info))
    parts = [_histogram_group(grid, members, spec, step_size, progress_fn) for grid, members in groups.items()]
    result = _concatenate(parts)
    if result.num_points == 0:
        raise InvalidInputError(f"the MC grid files {[str(p) for p in paths]} have no entries")

    if cache_path is not None:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        _save_cache(cache_path, result)
        logger.info("cached histograms in %s", cache_path)
    return result


def _histogram_group(grid: str, members: list, spec: DataSpec, step_size: int, progress_fn) -> GridHistograms:
    num_points = 1 + max(int(_max_point(tree, info)) for tree, info in members)
    num_sources = len(spec.sources)
    histogram = bh.Histogram(
        bh.axis.Integer(0, num_points, underflow=False, overflow=False),
        bh.axis.Integer(0, num_sources, underflow=False, overflow=False),
        bh.axis.Variable(spec.binning.edges_array()),
        storage=bh.storage.Int64(),
    )
    points = np.full((num_points, 3), np.nan)
    for tree, info in members:
        with reading(info.path, "tree 'mc'"):
            for chunk in tree.iterate(list(_BRANCHES), step_size=step_size, library="np"):
                source = chunk["source"].astype(np.int64)
                if source.size and (source.min() < 0 or source.max() >= num_sources):
                    raise InvalidInputError(
                        f"{info.path}: source id {source.max()} is outside the spec's {num_sources} sources; "
                        "use the --spec the file was made with"
                    )
                point = chunk["point"].astype(np.int64)
                histogram.fill(point, source, chunk["npe"].astype(np.float64))
                first = np.unique(point, return_index=True)[1]
                points[point[first]] = np.column_stack([chunk["kB"][first], chunk["fC"][first], chunk["LY"][first]])
                if progress_fn is not None:
                    progress_fn(int(point.size))
    flow = histogram.values(flow=True)
    seen = ~np.isnan(points[:, 0])
    counts = flow[:, :, 1:-1][seen].astype(np.int32)
    return GridHistograms(
        points=points[seen],
        counts=counts,
        num_underflow=flow[:, :, 0][seen].astype(np.int64),
        num_overflow=flow[:, :, -1][seen].astype(np.int64),
        grid=(grid,) * int(seen.sum()),
        point_index=np.flatnonzero(seen).astype(np.int64),
    )


def _max_point(tree, info) -> int:
    if info.metadata is not None and "points" in info.metadata.details:
        return int(info.metadata.details["points"][1]) - 1
    with reading(info.path, "branch 'point'"):
        return max((int(c["point"].max()) for c in tree.iterate(["point"], step_size=5_000_000, library="np") if c["point"].size), default=-1)


def _concatenate(parts: list[GridHistograms]) -> GridHistograms:
    return GridHistograms(
        points=np.concatenate([p.points for p in parts]),
        counts=np.concatenate([p.counts for p in parts]),
        num_underflow=np.concatenate([p.num_underflow for p in parts]),
        num_overflow=np.concatenate([p.num_overflow for p in parts]),
        grid=tuple(g for p in parts for g in p.grid),
        point_index=np.concatenate([p.point_index for p in parts]),
    )


def _cache_key(paths: Sequence[Path], spec: DataSpec) -> str:
    files = []
    for path in paths:
        status = path.stat()
        files.append([str(path.resolve()), status.st_size, status.st_mtime_ns])
    payload = json.dumps(
        {"version": _CACHE_VERSION, "files": files, "sources": list(spec.sources), "edges": list(spec.binning.edges)}
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def _save_cache(path: Path, histograms: GridHistograms) -> None:
    with atomic_output(path, overwrite=True) as temporary:
        with open(temporary, "wb") as handle:
            np.savez(
                handle,
                points=histograms.points,
                counts=histograms.counts,
                num_underflow=histograms.num_underflow,
                num_overflow=histograms.num_overflow,
                grid=np.asarray(histograms.grid, dtype=str),
                point_index=histograms.point_index,
            )


def _load_cache(path: Path) -> GridHistograms:
    with np.load(path) as data:
        return GridHistograms(
            points=data["points"],
            counts=data["counts"],
            num_underflow=data["num_underflow"],
            num_overflow=data["num_overflow"],
            grid=tuple(str(g) for g in data["grid"]),
            point_index=data["point_index"],
        )


def cache_directory_for(output: str | Path) -> Path:
    """Return the histogram cache directory used for an output file: ``.neuromct-cache`` next to it."""
    return Path(os.path.abspath(output)).parent / ".neuromct-cache"
