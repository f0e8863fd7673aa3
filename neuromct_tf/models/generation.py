"""Generated events written in the MC grid layout, so that every reader of simulated files reads them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from neuromct_tf._version import __version__
from neuromct_tf.io.mcgrid import MCBlock, write_mc_grid
from neuromct_tf.io.metadata import FileMetadata
from neuromct_tf.models.gan import generate_events
from neuromct_tf.specs import DataSpec

#: Grid name recorded in the metadata of generated files.
GENERATED_GRID = "generated"


@dataclass(frozen=True)
class GeneratedFile:
    """A written file of generated events: its path and number of entries."""

    path: Path
    num_entries: int


def write_generated_events(
    generator: keras.Model,
    spec: DataSpec,
    point,
    sources: Sequence[str],
    num_events: int,
    out: str | Path,
    seed: int = 0,
    overwrite: bool = False,
    progress_fn: Callable[[int], None] | None = None,
    model_name: str = "",
) -> GeneratedFile:
    """Generate ``num_events`` events per source at one point and write them as an MC grid file.

    Parameters
    ----------
    generator : keras.Model
        From :func:`~neuromct_tf.models.gan.load_generator`, made for ``spec``.
    spec : DataSpec
        Recorded in the file.
    point : sequence of float
        (kB g/cm2/GeV, fC, LY photons/MeV), inside the spec's box.
    sources : sequence of str
        Source names of the spec.
    num_events : int
        Events per source.
    out : path
        Output ROOT file, written atomically.
    seed : int
        Seed of the noise; the noise of source s comes from ``numpy.random.default_rng([seed, s])``,
        so the same seed gives a byte-identical file.
    overwrite : bool
        Replace an existing file.
    progress_fn : callable, optional
        Called with the number of events after each source.
    model_name : str
        Name of the generator file, recorded in the metadata.

    Raises
    ------
    InvalidInputError
        If a source or the point is invalid.
    OutputError
        If ``out`` exists and ``overwrite`` is false.
    """
    values = spec.check_point(point)
    source_ids = [spec.source_id(name) for name in sources]
    metadata = FileMetadata(
        kind="mc_grid",
        spec=spec.to_dict(),
        version=__version__,
        seed=seed,
        details={
            "grid": GENERATED_GRID,
            "shard": [1, 1],
            "points": [0, 1],
            "events_per_point": num_events,
            "generator": model_name,
        },
    )

    def blocks() -> Iterator[MCBlock]:
        for source_id in source_ids:
            rng = np.random.default_rng([seed, source_id])
            npe = generate_events(generator, values, source_id, num_events, rng)
            if progress_fn is not None:
                progress_fn(num_events)
            yield MCBlock(
                npe=npe, trigger_kind=np.zeros(num_events, dtype=np.int8), point_index=0,
                point=tuple(float(v) for v in values), source_id=source_id,
            )

    num_entries = write_mc_grid(out, blocks(), metadata, overwrite=overwrite)
    return GeneratedFile(path=Path(out), num_entries=num_entries)
