"""MC grid files: per-event NPE of a simulation grid, one flat TTree.

Layout
------
A TTree named ``mc`` with one entry per trigger and the branches

========  =======  =====================================================
branch    type     meaning
========  =======  =====================================================
npe       float32  observed charge in thousands of photo-electrons (kNPE)
kB        float64  Birks' constant of the point, g/cm2/GeV
fC        float64  Cherenkov factor of the point
LY        float64  light yield of the point, photons/MeV
source    int8     source id, the position in the spec's source list
point     int32    index of the point in its grid
trigger   int8     0 for a prompt trigger, 1 for a delayed (capture) trigger
========  =======  =====================================================

plus the ``neuromct_metadata`` record (:mod:`neuromct_tf.io.metadata`) with
``details`` ``grid``, ``shard`` (1-based index and count) and ``points`` (the
point indices of the file, as ``[first, stop)``). Entries are written block by
block, one block per (point, source), in point order then source order, and
flushed to a TBasket every :data:`FLUSH_ENTRIES` entries, so a writer holds at
most one basket in memory. Readers iterate with :func:`iterate_mc_grid`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuromct_tf.errors import InvalidInputError
from neuromct_tf.io.atomic import atomic_output
from neuromct_tf.io.metadata import FileMetadata, read_metadata, write_metadata
from neuromct_tf.io.rootfile import create_root, get_object, open_root, reading
from neuromct_tf.specs import DataSpec

TREE_NAME = "mc"

BRANCH_TYPES = {
    "npe": np.float32,
    "kB": np.float64,
    "fC": np.float64,
    "LY": np.float64,
    "source": np.int8,
    "point": np.int32,
    "trigger": np.int8,
}

#: Entries buffered before one call to ``TTree.extend`` (one basket per branch).
FLUSH_ENTRIES = 1 << 20


@dataclass(frozen=True)
class MCBlock:
    """The triggers of one (point, source) of a grid.

    Attributes
    ----------
    npe : numpy.ndarray, shape (num_triggers,)
        Observed charge in kNPE.
    trigger_kind : numpy.ndarray of int8, shape (num_triggers,)
        0 prompt, 1 delayed.
    point_index : int
        Index of the point in the grid.
    point : tuple of float
        (kB, fC, LY) of the point.
    source_id : int
        Id of the source in the spec's source list.
    """

    npe: np.ndarray
    trigger_kind: np.ndarray
    point_index: int
    point: tuple[float, float, float]
    source_id: int

    def columns(self) -> dict[str, np.ndarray]:
        """Return the block as branch arrays of the MC grid tree."""
        size = self.npe.shape[0]
        return {
            "npe": self.npe.astype(np.float32),
            "kB": np.full(size, self.point[0]),
            "fC": np.full(size, self.point[1]),
            "LY": np.full(size, self.point[2]),
            "source": np.full(size, self.source_id, dtype=np.int8),
            "point": np.full(size, self.point_index, dtype=np.int32),
            "trigger": self.trigger_kind.astype(np.int8),
        }


def write_mc_grid(path: str | Path, blocks: Iterable[MCBlock], metadata: FileMetadata, overwrite: bool = False) -> int:
    """Write blocks to an MC grid file, atomically, and return the number of entries.

    ``blocks`` may be a generator: it is consumed one block at a time, so the
    memory used is bounded by :data:`FLUSH_ENTRIES` entries whatever the size
    of the grid.

    Raises
    ------
    OutputError
        If ``path`` exists and ``overwrite`` is false, or its directory is not writable.
    """
    num_entries = 0
    with atomic_output(path, overwrite) as temporary, create_root(temporary) as file:
        write_metadata(file, metadata)
        tree = file.mktree(TREE_NAME, BRANCH_TYPES, title="neuromct-tf MC grid")
        pending: list[dict[str, np.ndarray]] = []
        pending_size = 0
        for block in blocks:
            pending.append(block.columns())
            pending_size += block.npe.shape[0]
            if pending_size >= FLUSH_ENTRIES:
                tree.extend(_concatenate(pending))
                num_entries += pending_size
                pending, pending_size = [], 0
        if pending_size:
            tree.extend(_concatenate(pending))
            num_entries += pending_size
    return num_entries


def _concatenate(columns: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {name: np.concatenate([c[name] for c in columns]) for name in BRANCH_TYPES}


@dataclass(frozen=True)
class MCGridInfo:
    """Summary of one MC grid file: its metadata and number of entries."""

    path: Path
    metadata: FileMetadata | None
    num_entries: int


def open_mc_grid(path: str | Path, spec: DataSpec | None = None, branches: Iterable[str] = BRANCH_TYPES):
    """Open an MC grid file and return ``(tree, info)`` after checking its layout.

    Parameters
    ----------
    path : str or pathlib.Path
        The file.
    spec : DataSpec, optional
        When given, the spec recorded in the file must be compatible with it.
    branches : iterable of str
        Branches that must exist.

    Raises
    ------
    InvalidInputError
        If the file cannot be read, has no ``mc`` tree or lacks a branch.
    SpecMismatchError
        If the recorded spec differs from ``spec``.
    """
    path = Path(path)
    directory = open_root(path)
    tree = get_object(directory, TREE_NAME, "TTree", path)
    missing = [name for name in branches if name not in tree.keys()]
    if missing:
        raise InvalidInputError(
            f"tree {TREE_NAME!r} in {path} lacks the branches {missing}; it has {tree.keys()}. "
            "Give an MC grid file written by 'neuromct-tf simulate'"
        )
    with reading(path, "the metadata"):
        metadata = read_metadata(directory, path)
    if spec is not None and metadata is not None:
        spec.check_compatible(metadata.data_spec(str(path)), what=str(path))
    return tree, MCGridInfo(path=path, metadata=metadata, num_entries=int(tree.num_entries))


def iterate_mc_grid(
    paths: Sequence[str | Path],
    spec: DataSpec | None = None,
    branches: Sequence[str] = tuple(BRANCH_TYPES),
    step_size: int = 1_000_000,
) -> Iterator[dict[str, np.ndarray]]:
    """Iterate over the entries of MC grid files in chunks of at most ``step_size`` entries.

    Every file is checked (layout and spec) before the first chunk is read, and
    only one chunk is in memory at a time.

    Yields
    ------
    dict of str to numpy.ndarray
        One array per requested branch, all of the same length.
    """
    trees = [open_mc_grid(path, spec, branches) for path in paths]
    for tree, info in trees:
        with reading(info.path, f"tree {TREE_NAME!r}"):
            for chunk in tree.iterate(list(branches), step_size=step_size, library="np"):
                yield chunk


@dataclass(frozen=True)
class MCGridSummary:
    """Per-source totals of an MC grid file.

    Attributes
    ----------
    info : MCGridInfo
        Path, metadata and number of entries.
    num_points : int
        Distinct point indices in the file.
    entries : numpy.ndarray of int64, shape (num_sources,)
        Triggers per source id.
    mean_npe : numpy.ndarray of float64, shape (num_sources,)
        Mean observed charge per source id in kNPE (NaN for a source without entries).
    """

    info: MCGridInfo
    num_points: int
    entries: np.ndarray
    mean_npe: np.ndarray


def summarize_mc_grid(path: str | Path, num_sources: int, spec: DataSpec | None = None) -> MCGridSummary:
    """Stream through an MC grid file and return its per-source totals."""
    tree, info = open_mc_grid(path, spec, ("npe", "source", "point"))
    entries = np.zeros(num_sources, dtype=np.int64)
    sums = np.zeros(num_sources)
    points: set[int] = set()
    with reading(info.path, f"tree {TREE_NAME!r}"):
        for chunk in tree.iterate(["npe", "source", "point"], step_size=1_000_000, library="np"):
            source = chunk["source"].astype(np.int64)
            if source.size and (source.min() < 0 or source.max() >= num_sources):
                raise InvalidInputError(
                    f"{info.path}: source ids up to {source.max()} but the spec has {num_sources} sources; "
                    "use the --spec the file was made with"
                )
            entries += np.bincount(source, minlength=num_sources)
            sums += np.bincount(source, weights=chunk["npe"], minlength=num_sources)
            points.update(np.unique(chunk["point"]).tolist())
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(entries > 0, sums / np.maximum(entries, 1), np.nan)
    return MCGridSummary(info=info, num_points=len(points), entries=entries, mean_npe=mean)
