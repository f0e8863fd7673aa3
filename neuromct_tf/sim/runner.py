"""Running the reference simulation over a grid of points or for one calibration point.

Random streams
--------------
Every (grid, point, source) draws from its own generators, seeded by
``numpy.random.SeedSequence(seed, spawn_key=(crc32(grid name), point index,
source id, chunk))``, one per chunk of :data:`CHUNK_EVENTS` decays. The first
chunk's key has no chunk index, so a point of up to that many decays keeps
the stream it had before chunking existed. Streams
are therefore statistically independent between points and sources, memory
stays bounded for any number of decays per point, and a point gives the same
events whether it is simulated alone, in a shard or in the whole grid, in one
process or several.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuromct_tf._version import __version__
from neuromct_tf.errors import InvalidInputError, OutputError
from neuromct_tf.io.atomic import check_output_path
from neuromct_tf.io.calib import CalibrationLayout, write_calibration
from neuromct_tf.io.mcgrid import MCBlock, write_mc_grid
from neuromct_tf.io.metadata import FileMetadata
from neuromct_tf.sim.detection import DEFAULT_RESPONSE, DetectorResponse, detect_npe
from neuromct_tf.sim.light import LightModel
from neuromct_tf.sim.sources import simulate_deposits
from neuromct_tf.specs import DataSpec

logger = logging.getLogger(__name__)

#: Name of the random-stream family of calibration files.
CALIBRATION_STREAM = "calib"

#: Decays simulated with one generator and in one piece; larger requests are split.
CHUNK_EVENTS = 100_000

ProgressFn = Callable[[int], None]


def random_stream(seed: int, stream: str, point_index: int, source_id: int, chunk: int = 0) -> np.random.Generator:
    """Return the generator of one chunk of one (grid, point, source), independent of all others."""
    key = (zlib.crc32(stream.encode()), point_index, source_id) + ((chunk,) if chunk else ())
    sequence = np.random.SeedSequence(seed, spawn_key=key)
    return np.random.Generator(np.random.PCG64(sequence))


def simulate_chunked(
    source: str, point: Sequence[float], num_events: int, seed: int, stream: str, point_index: int, source_id: int
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate ``num_events`` decays in chunks of :data:`CHUNK_EVENTS`, each with its own generator.

    Returns the concatenated ``(npe, trigger_kind)`` of :func:`simulate_triggers`.
    """
    npe_parts, kind_parts = [], []
    for chunk, start in enumerate(range(0, num_events, CHUNK_EVENTS)):
        size = min(CHUNK_EVENTS, num_events - start)
        rng = random_stream(seed, stream, point_index, source_id, chunk)
        npe, kind = simulate_triggers(source, point, size, rng)
        npe_parts.append(npe)
        kind_parts.append(kind)
    return np.concatenate(npe_parts), np.concatenate(kind_parts)


def simulate_triggers(
    source: str,
    point: Sequence[float],
    num_events: int,
    rng: np.random.Generator,
    response: DetectorResponse = DEFAULT_RESPONSE,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate ``num_events`` decays of ``source`` at one parameter point.

    Parameters
    ----------
    source : str
        Source name (Cs137, K40, Co60, AmBe, AmC).
    point : sequence of float
        (kB in g/cm2/GeV, fC, LY in photons/MeV).
    num_events : int
        Decays to simulate. A neutron source gives two triggers per decay
        (prompt and delayed), the gamma sources one.
    rng : numpy.random.Generator
        Random stream.
    response : DetectorResponse
        Photo-detection settings.

    Returns
    -------
    npe : numpy.ndarray of float64, shape (num_triggers,)
        Observed charge in kNPE.
    trigger_kind : numpy.ndarray of int8, shape (num_triggers,)
        0 prompt, 1 delayed.
    """
    birks_kb, cherenkov_factor, light_yield = (float(v) for v in point)
    deposits = simulate_deposits(source, num_events, rng)
    photons = LightModel.default().mean_photons(deposits, birks_kb, cherenkov_factor, light_yield)
    npe = detect_npe(photons, rng, response)
    return npe, deposits.trigger_kind


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``i/N`` (1-based shard ``i`` of ``N``) into ``(i, N)``.

    Raises
    ------
    InvalidInputError
        If the text is not two integers with ``1 <= i <= N``.
    """
    parts = text.split("/")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise InvalidInputError(f"invalid shard {text!r}: write it as i/N, e.g. 2/8 for the second of eight shards")
    index, count = int(parts[0]), int(parts[1])
    if count < 1 or not 1 <= index <= count:
        raise InvalidInputError(f"invalid shard {text!r}: the index must be between 1 and the shard count {count}")
    return index, count


def shard_points(num_points: int, shard: tuple[int, int]) -> range:
    """Return the contiguous range of point indices of a 1-based shard ``(i, N)``.

    Shards 1..N in order cover ``range(num_points)`` exactly once, so their
    files concatenated in order hold the same entries as the unsharded file.
    """
    index, count = shard
    bounds = np.linspace(0, num_points, count + 1).round().astype(int)
    return range(int(bounds[index - 1]), int(bounds[index]))


@dataclass(frozen=True)
class SimulationSummary:
    """Summary of a simulation run: the files written, the counts and the wall time.

    Attributes
    ----------
    paths : tuple of pathlib.Path
        Files written.
    num_points : int
        Parameter points simulated.
    num_events : int
        Decays simulated over all points and sources.
    num_triggers : int
        Entries written (neutron sources give two per decay).
    wall_seconds : float
        Elapsed time.
    """

    paths: tuple[Path, ...]
    num_points: int
    num_events: int
    num_triggers: int
    wall_seconds: float

    @property
    def events_per_second(self) -> float:
        """Simulated decays per second of wall time."""
        return self.num_events / self.wall_seconds if self.wall_seconds > 0 else float("nan")


def grid_file_name(grid_name: str, shard: tuple[int, int]) -> str:
    """Return the file name of a grid shard, e.g. ``training.root`` or ``training_shard002of008.root``."""
    index, count = shard
    if count == 1:
        return f"{grid_name}.root"
    return f"{grid_name}_shard{index:03d}of{count:03d}.root"


@dataclass(frozen=True)
class _BlockTask:
    stream: str
    seed: int
    point_index: int
    point: tuple[float, float, float]
    source: str
    source_id: int
    num_events: int


def _run_block(task: _BlockTask) -> MCBlock:
    npe, trigger_kind = simulate_chunked(
        task.source, task.point, task.num_events, task.seed, task.stream, task.point_index, task.source_id
    )
    return MCBlock(npe=npe, trigger_kind=trigger_kind, point_index=task.point_index, point=task.point, source_id=task.source_id)


def _run_blocks(tasks: Sequence[_BlockTask], num_jobs: int, progress_fn: ProgressFn | None) -> Iterator[MCBlock]:
    """Yield the blocks of ``tasks`` in task order, computed in ``num_jobs`` processes."""
    if num_jobs <= 1:
        for task in tasks:
            block = _run_block(task)
            if progress_fn is not None:
                progress_fn(task.num_events)
            yield block
        return
    with concurrent.futures.ProcessPoolExecutor(max_workers=num_jobs) as executor:
        for task, block in zip(tasks, executor.map(_run_block, tasks, chunksize=4)):
            if progress_fn is not None:
                progress_fn(task.num_events)
            yield block


def count_grid_events(spec: DataSpec, grid_name: str, num_events: int | None, shard: tuple[int, int]) -> int:
    """Return the decays a grid shard will simulate over all its points and sources (for progress bars)."""
    grid = spec.grid(grid_name)
    events = grid.events_per_point() if num_events is None else np.full(grid.num_points, num_events)
    return int(events[list(shard_points(grid.num_points, shard))].sum()) * len(spec.sources)


def simulate_grid(
    spec: DataSpec,
    grid_name: str,
    out_dir: str | Path,
    seed: int,
    num_events: int | None = None,
    shard: tuple[int, int] = (1, 1),
    num_jobs: int = 1,
    overwrite: bool = False,
    progress_fn: ProgressFn | None = None,
) -> SimulationSummary:
    """Simulate every source at every point of a grid shard and write an MC grid file.

    Parameters
    ----------
    spec : DataSpec
        Gives the grid, the sources and the parameter box.
    grid_name : str
        A grid of the spec (``training``, ``validation``, ``testing1``, ``testing2``, ...).
    out_dir : str or pathlib.Path
        Directory of the output, created if missing; the file is named by :func:`grid_file_name`.
    seed : int
        Seed of all random streams.
    num_events : int, optional
        Decays per source and point; the grid's own count by default.
    shard : tuple of int
        1-based ``(i, N)``: simulate the i-th of N contiguous blocks of points.
    num_jobs : int
        Worker processes; the output does not depend on it.
    overwrite : bool
        Replace an existing output file.
    progress_fn : callable, optional
        Called with the number of decays after each (point, source).

    Raises
    ------
    InvalidInputError
        For an unknown grid or ``num_events <= 0``.
    OutputError
        If the output exists without ``overwrite`` or cannot be written.
    """
    grid = spec.grid(grid_name)
    if num_events is not None and num_events <= 0:
        raise InvalidInputError(f"invalid number of events {num_events}; give a positive number")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"output {out_dir} is a file; give a directory for grid outputs")
    path = out_dir / grid_file_name(grid_name, shard)
    if out_dir.is_dir():
        check_output_path(path, overwrite)
    else:
        try:
            out_dir.mkdir(parents=True)
        except OSError as error:
            raise OutputError(f"cannot create output directory {out_dir}: {error.strerror}; choose another --out") from None

    points = grid.points()
    events = grid.events_per_point() if num_events is None else np.full(grid.num_points, num_events)
    indices = shard_points(grid.num_points, shard)
    tasks = [
        _BlockTask(grid_name, seed, int(i), tuple(float(v) for v in points[i]), source, source_id, int(events[i]))
        for i in indices
        for source_id, source in enumerate(spec.sources)
    ]
    metadata = FileMetadata(
        kind="mc_grid",
        spec=spec.to_dict(),
        version=__version__,
        seed=seed,
        details={
            "grid": grid_name,
            "shard": list(shard),
            "points": [indices.start, indices.stop],
            "events_per_point": None if num_events is None else num_events,
        },
    )
    logger.info("simulating grid %s, points %d to %d of %d, into %s", grid_name, indices.start, indices.stop - 1, grid.num_points, path)
    start = time.perf_counter()
    num_triggers = write_mc_grid(path, _run_blocks(tasks, num_jobs, progress_fn), metadata, overwrite=overwrite)
    wall = time.perf_counter() - start
    return SimulationSummary(
        paths=(path,),
        num_points=len(indices),
        num_events=int(sum(t.num_events for t in tasks)),
        num_triggers=num_triggers,
        wall_seconds=wall,
    )


def simulate_calibration(
    spec: DataSpec,
    point: Sequence[float],
    num_events: int,
    out: str | Path,
    seed: int,
    layout: CalibrationLayout,
    sources: Sequence[str] | None = None,
    overwrite: bool = False,
    progress_fn: ProgressFn | None = None,
) -> SimulationSummary:
    """Simulate a pseudo-calibration file at one parameter point.

    Parameters
    ----------
    spec : DataSpec
        Gives the sources and the box.
    point : sequence of float
        (kB, fC, LY), inside the box.
    num_events : int
        Decays per source (a neutron source gives two triggers per decay).
    out : str or pathlib.Path
        Output file; with a per-source layout, one file per source next to it.
    seed : int
        Seed of the random streams.
    layout : CalibrationLayout
        Calibration layout to write.
    sources : sequence of str, optional
        Sources to simulate; all spec sources by default.
    overwrite : bool
        Replace existing outputs.
    progress_fn : callable, optional
        Called with the number of decays after each source.

    Raises
    ------
    InvalidInputError
        For a point outside the box, an unknown source or ``num_events <= 0``.
    OutputError
        If an output exists without ``overwrite`` or cannot be written.
    """
    values = spec.check_point(point)
    if num_events <= 0:
        raise InvalidInputError(f"invalid number of events {num_events}; give a positive number")
    names = list(spec.sources) if sources is None else list(sources)
    for name in names:
        spec.source_id(name)
    check_output_path(out, overwrite)

    start = time.perf_counter()
    npe = {}
    for name in names:
        npe[name], _ = simulate_chunked(name, values, num_events, seed, CALIBRATION_STREAM, 0, spec.source_id(name))
        if progress_fn is not None:
            progress_fn(num_events)
    metadata = FileMetadata(
        kind="calibration",
        spec=spec.to_dict(),
        version=__version__,
        seed=seed,
        details={"point": [float(v) for v in values], "events": num_events, "sources": names, "layout": layout.__dict__},
    )
    paths = write_calibration(out, npe, layout, spec, metadata, overwrite=overwrite)
    wall = time.perf_counter() - start
    return SimulationSummary(
        paths=tuple(paths),
        num_points=1,
        num_events=num_events * len(names),
        num_triggers=int(sum(v.shape[0] for v in npe.values())),
        wall_seconds=wall,
    )
