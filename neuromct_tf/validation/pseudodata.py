"""Pseudo-calibration datasets, binned in memory in the spec's binning.

Two kinds of pseudo-data feed the validation studies:

- ``simulation``: decays of the reference simulation, one independent random
  stream per (stream name, dataset, source), binned as a calibration file
  read by ``neuromct-tf fit`` would be. The fit then tests the surrogate as
  well as the statistics.
- ``surrogate``: Poisson counts with means ``exposure * p_sb`` from the
  surrogate itself. The fit model is then exact, so pulls are standard
  normal up to the asymptotic approximation.

The simulation runs in worker processes started with ``spawn``, so that they
never inherit the threads of TensorFlow in the parent process. Each worker
bins its events and returns only the counts.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from neuromct_tf.errors import InvalidInputError
from neuromct_tf.io.calib import histogram_counts, make_histogram
from neuromct_tf.sim.runner import simulate_chunked
from neuromct_tf.specs import Binning, DataSpec

#: Kinds of pseudo-data.
DATA_SOURCES = ("simulation", "surrogate")

ProgressFn = Callable[[int], None]


@dataclass(frozen=True)
class BinnedDatasets:
    """Binned counts of D pseudo-datasets of the same sources.

    Attributes
    ----------
    counts : numpy.ndarray of int64, shape (D, S, num_bins)
        Entries per bin.
    num_underflow, num_overflow : numpy.ndarray of int64, shape (D, S)
        Entries below and above the binning; they do not enter the fit.
    """

    counts: np.ndarray
    num_underflow: np.ndarray
    num_overflow: np.ndarray


@dataclass(frozen=True)
class _SimulationTask:
    source: str
    source_id: int
    point: tuple[float, float, float]
    num_events: int
    seed: int
    stream: str
    dataset: int
    binning: Binning


def stream_seed(seed: int, name: str, *keys: int) -> np.random.SeedSequence:
    """Return the seed sequence of one named random stream with integer keys, independent of all others."""
    return np.random.SeedSequence(seed, spawn_key=(zlib.crc32(name.encode()), *keys))


def _simulate_binned(task: _SimulationTask) -> tuple[np.ndarray, int, int]:
    npe, _ = simulate_chunked(task.source, task.point, task.num_events, task.seed, task.stream, task.dataset, task.source_id)
    # The same histogram as a calibration file read by the fit, so that the counts match bin for bin.
    histogram = make_histogram(task.binning)
    histogram.fill(npe)
    return histogram_counts(histogram)


class SimulationPool:
    """Worker processes of the reference simulation, kept for a whole study.

    Parameters
    ----------
    num_jobs : int
        Worker processes; 1 runs in this process. The counts do not depend on it.

    Notes
    -----
    As with any ``spawn`` pool, a script that uses more than one job must
    start the study under ``if __name__ == "__main__":``, because each worker
    imports the script's main module.
    """

    def __init__(self, num_jobs: int = 1):
        if num_jobs < 1:
            raise InvalidInputError(f"invalid number of jobs {num_jobs}; give at least 1")
        self.num_jobs = num_jobs
        self._executor = None
        if num_jobs > 1:
            self._executor = concurrent.futures.ProcessPoolExecutor(
                max_workers=num_jobs, mp_context=multiprocessing.get_context("spawn")
            )

    def __enter__(self) -> SimulationPool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker processes."""
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)
            self._executor = None

    def map(self, tasks: Sequence[_SimulationTask], progress_fn: ProgressFn | None = None):
        """Yield the binned results of ``tasks`` in task order."""
        for task, result in zip(tasks, self.map_function(_simulate_binned, tasks)):
            if progress_fn is not None:
                progress_fn(task.num_events)
            yield result

    def submit(self, function, task) -> concurrent.futures.Future:
        """Start ``function(task)`` in a worker and return its future; needs more than one job."""
        if self._executor is None:
            raise RuntimeError("a pool of one job runs tasks in this process; use map_function")
        return self._executor.submit(function, task)

    def map_function(self, function, tasks: Sequence):
        """Yield ``function(task)`` for each task, in task order; ``function`` must be importable by the workers."""
        if self._executor is None:
            return map(function, tasks)
        return self._executor.map(function, tasks, chunksize=1)


def simulate_datasets(
    spec: DataSpec,
    point: Sequence[float],
    num_events: int,
    datasets: Sequence[int],
    seed: int,
    stream: str,
    pool: SimulationPool,
    progress_fn: ProgressFn | None = None,
) -> BinnedDatasets:
    """Simulate every spec source for each dataset index and bin the NPE in the spec's binning.

    Parameters
    ----------
    spec : DataSpec
        Sources and binning.
    point : sequence of float
        (kB g/cm2/GeV, fC, LY photons/MeV).
    num_events : int
        Decays per source and dataset (a neutron source gives two triggers per decay).
    datasets : sequence of int
        Dataset indices; dataset i of ``stream`` draws from the generators of
        :func:`~neuromct_tf.sim.runner.random_stream` with point index i.
    seed : int
        Seed of all streams.
    stream : str
        Name of the stream family, e.g. one per exposure.
    pool : SimulationPool
        Worker processes.
    progress_fn : callable, optional
        Called with the number of decays after each (dataset, source).

    Returns
    -------
    BinnedDatasets
    """
    tasks = _dataset_tasks(spec, point, num_events, datasets, seed, stream)
    return _collect(pool.map(tasks, progress_fn), len(datasets), len(spec.sources), spec.binning.num_bins)


def submit_datasets(
    spec: DataSpec, point: Sequence[float], num_events: int, datasets: Sequence[int], seed: int, stream: str, pool: SimulationPool
) -> Callable[[], BinnedDatasets]:
    """Start :func:`simulate_datasets` in the workers and return a function that waits for its result.

    With more than one job the workers start at once, so this process can
    fit other datasets meanwhile. With one job the simulation runs when the
    returned function is called.
    """
    if pool.num_jobs == 1:
        return lambda: simulate_datasets(spec, point, num_events, datasets, seed, stream, pool)
    tasks = _dataset_tasks(spec, point, num_events, datasets, seed, stream)
    futures = [pool.submit(_simulate_binned, task) for task in tasks]
    return lambda: _collect((future.result() for future in futures), len(datasets), len(spec.sources), spec.binning.num_bins)


def _dataset_tasks(spec, point, num_events, datasets, seed, stream) -> list[_SimulationTask]:
    values = tuple(float(v) for v in point)
    return [
        _SimulationTask(name, spec.source_id(name), values, int(num_events), int(seed), stream, int(dataset), spec.binning)
        for dataset in datasets
        for name in spec.sources
    ]


def _collect(results, num_datasets: int, num_sources: int, num_bins: int) -> BinnedDatasets:
    """Arrange per-(dataset, source) results, in task order, into :class:`BinnedDatasets`."""
    counts = np.zeros((num_datasets, num_sources, num_bins), dtype=np.int64)
    underflow = np.zeros((num_datasets, num_sources), dtype=np.int64)
    overflow = np.zeros_like(underflow)
    for index, (binned, below, above) in enumerate(results):
        dataset, source = divmod(index, num_sources)
        counts[dataset, source] = binned
        underflow[dataset, source] = below
        overflow[dataset, source] = above
    return BinnedDatasets(counts=counts, num_underflow=underflow, num_overflow=overflow)


def draw_surrogate_datasets(
    probabilities: np.ndarray, num_events: int, datasets: Sequence[int], seed: int, stream: str
) -> BinnedDatasets:
    """Draw Poisson counts with means ``num_events * probabilities`` for each dataset index.

    Parameters
    ----------
    probabilities : numpy.ndarray of float64, shape (S, num_bins)
        The surrogate's bin probabilities at the true point.
    num_events : int
        Expected entries in range per source.
    datasets : sequence of int
        Dataset indices; each draws from its own stream, so a dataset does not depend on the others.
    seed : int
        Seed of all streams.
    stream : str
        Name of the stream family.

    Returns
    -------
    BinnedDatasets
        Without entries outside the binning.
    """
    means = num_events * np.asarray(probabilities, dtype=np.float64)
    counts = np.stack([
        np.random.default_rng(stream_seed(seed, stream, int(dataset))).poisson(means) for dataset in datasets
    ]).astype(np.int64)
    zeros = np.zeros(counts.shape[:2], dtype=np.int64)
    return BinnedDatasets(counts=counts, num_underflow=zeros, num_overflow=zeros.copy())
