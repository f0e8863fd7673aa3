"""Per-event NPE of MC grid files: a fixed random subsample of every (point, source).

:func:`read_event_sets` streams through MC grid files with uproot, one chunk
of entries at a time. The writer stores each (point, source) as one
contiguous block of triggers (:mod:`neuromct_tf.io.mcgrid`), so a block is
complete as soon as the next one starts. Of each block the reader keeps
``events_per_block`` triggers drawn without replacement, with a random
generator seeded by the seed, the file's position, the point and the source,
so the subsample does not depend on the chunk size. Memory therefore holds one
chunk plus the subsample: 4 bytes x events_per_block per (point, source),
95 MB for the 46,305 blocks of the default training grid at 512 events.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

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
class EventSets:
    """Subsampled triggers of every (point, source) block of MC grid files.

    Attributes
    ----------
    params : numpy.ndarray of float32, shape (num_blocks, 3)
        kB (g/cm2/GeV), fC and LY (photons/MeV) of each block.
    source : numpy.ndarray of int32, shape (num_blocks,)
        Source id of each block.
    npe : numpy.ndarray of float32, shape (num_blocks, events_per_block)
        Charge of the kept triggers in kNPE, prompt and delayed alike.
    num_triggers : numpy.ndarray of int64, shape (num_blocks,)
        Triggers of the block in the file; a block with fewer triggers than
        ``events_per_block`` is drawn with replacement.
    """

    params: np.ndarray
    source: np.ndarray
    npe: np.ndarray
    num_triggers: np.ndarray

    @property
    def num_blocks(self) -> int:
        """Number of (point, source) blocks."""
        return int(self.params.shape[0])

    @property
    def events_per_block(self) -> int:
        """Triggers kept per block."""
        return int(self.npe.shape[1])


def read_event_sets(
    paths: Sequence[str | Path],
    spec: DataSpec,
    events_per_block: int,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    step_size: int = 2_000_000,
    progress_fn: Callable[[int], None] | None = None,
) -> EventSets:
    """Read a fixed random subsample of the triggers of every (point, source) of MC grid files.

    Parameters
    ----------
    paths : sequence of path
        MC grid files.
    spec : DataSpec
        Each file's recorded spec must be compatible with it.
    events_per_block : int
        Triggers kept per (point, source).
    seed : int
        Seed of the subsample.
    cache_dir : path, optional
        Directory of an ``.npz`` cache keyed by the files, the spec, the size
        and the seed; no caching when ``None``.
    step_size : int
        Entries read per chunk.
    progress_fn : callable, optional
        Called with the number of entries after each chunk.

    Raises
    ------
    InvalidInputError
        For no file, an unreadable file, a source id outside the spec, or files without entries.
    SpecMismatchError
        For a file made with another binning, box or source list.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise InvalidInputError("no MC grid file given; pass at least one file written by 'neuromct-tf simulate'")
    if events_per_block < 1:
        raise InvalidInputError(f"invalid events per block {events_per_block}: keep at least 1 trigger per block")
    opened = [open_mc_grid(path, spec, _BRANCHES) for path in paths]
    cache_path = None
    if cache_dir is not None:
        cache_path = Path(cache_dir) / f"events-{_cache_key(paths, spec, events_per_block, seed)}.npz"
        if cache_path.exists():
            logger.info("loading event subsample from the cache %s", cache_path)
            return _load_cache(cache_path)

    collector = _BlockCollector(events_per_block, seed, len(spec.sources))
    for file_index, (tree, info) in enumerate(opened):
        with reading(info.path, "tree 'mc'"):
            for chunk in tree.iterate(list(_BRANCHES), step_size=step_size, library="np"):
                collector.add_chunk(file_index, chunk, info.path)
                if progress_fn is not None:
                    progress_fn(int(chunk["npe"].size))
        collector.finish_file()
    result = collector.result()
    if result.num_blocks == 0:
        raise InvalidInputError(f"the MC grid files {[str(p) for p in paths]} have no entries")

    if cache_path is not None:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        _save_cache(cache_path, result)
        logger.info("cached the event subsample in %s", cache_path)
    return result


class _BlockCollector:
    """Split chunks into (point, source) blocks and keep a seeded subsample of each complete block."""

    def __init__(self, events_per_block: int, seed: int, num_sources: int):
        self.events_per_block = events_per_block
        self.seed = seed
        self.num_sources = num_sources
        self.file_index = 0
        self.pending: dict[str, np.ndarray] | None = None
        self.params: list[np.ndarray] = []
        self.source: list[int] = []
        self.npe: list[np.ndarray] = []
        self.num_triggers: list[int] = []

    def add_chunk(self, file_index: int, chunk: dict[str, np.ndarray], path: Path) -> None:
        self.file_index = file_index
        source = chunk["source"].astype(np.int64)
        if source.size == 0:
            return
        if source.min() < 0 or source.max() >= self.num_sources:
            raise InvalidInputError(
                f"{path}: source id {source.max()} is outside the spec's {self.num_sources} sources; "
                "use the --spec the file was made with"
            )
        if self.pending is not None:
            chunk = {name: np.concatenate([self.pending[name], chunk[name]]) for name in _BRANCHES}
            source = chunk["source"].astype(np.int64)
        key = chunk["point"].astype(np.int64) * self.num_sources + source
        starts = np.concatenate([[0], np.flatnonzero(np.diff(key)) + 1])
        stops = np.concatenate([starts[1:], [key.size]])
        # The last block may continue in the next chunk, so it is kept until then.
        for start, stop in zip(starts[:-1], stops[:-1]):
            self._keep(chunk, start, stop)
        self.pending = {name: chunk[name][starts[-1]:] for name in _BRANCHES}

    def finish_file(self) -> None:
        if self.pending is not None and self.pending["npe"].size:
            self._keep(self.pending, 0, self.pending["npe"].size)
        self.pending = None

    def _keep(self, chunk: dict[str, np.ndarray], start: int, stop: int) -> None:
        point = int(chunk["point"][start])
        source = int(chunk["source"][start])
        size = stop - start
        rng = np.random.default_rng([self.seed, self.file_index, point, source])
        chosen = rng.choice(size, self.events_per_block, replace=size < self.events_per_block)
        self.npe.append(chunk["npe"][start:stop][chosen].astype(np.float32))
        self.params.append(np.array([chunk["kB"][start], chunk["fC"][start], chunk["LY"][start]], dtype=np.float32))
        self.source.append(source)
        self.num_triggers.append(size)

    def result(self) -> EventSets:
        if not self.npe:
            return EventSets(
                np.zeros((0, 3), np.float32), np.zeros(0, np.int32),
                np.zeros((0, self.events_per_block), np.float32), np.zeros(0, np.int64),
            )
        return EventSets(
            params=np.stack(self.params), source=np.asarray(self.source, dtype=np.int32),
            npe=np.stack(self.npe), num_triggers=np.asarray(self.num_triggers, dtype=np.int64),
        )


def _cache_key(paths: Sequence[Path], spec: DataSpec, events_per_block: int, seed: int) -> str:
    files = []
    for path in paths:
        status = path.stat()
        files.append([str(path.resolve()), status.st_size, status.st_mtime_ns])
    payload = json.dumps(
        {
            "version": _CACHE_VERSION, "files": files, "sources": list(spec.sources),
            "events_per_block": events_per_block, "seed": seed,
        }
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def _save_cache(path: Path, events: EventSets) -> None:
    with atomic_output(path, overwrite=True) as temporary:
        with open(temporary, "wb") as handle:
            np.savez(
                handle, params=events.params, source=events.source, npe=events.npe, num_triggers=events.num_triggers
            )


def _load_cache(path: Path) -> EventSets:
    with np.load(path) as data:
        return EventSets(
            params=data["params"], source=data["source"], npe=data["npe"], num_triggers=data["num_triggers"]
        )
