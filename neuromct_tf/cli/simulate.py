"""``neuromct-tf simulate``: run the reference detector-response simulation."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from neuromct_tf.cli.common import STDOUT, SpecOption, parse_point, parse_sources, progress_bar, read_spec
from neuromct_tf.errors import InvalidInputError
from neuromct_tf.io.calib import LAYOUT_PRESETS, layout_preset

CALIBRATION_TARGET = "calib"


def simulate(
    target: str = typer.Argument(
        ...,
        metavar="TARGET",
        help="A grid of the spec (training, validation, testing1, testing2, reference, or one of a --spec file), "
        "or 'calib' for a pseudo-calibration file at one --point.",
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Output directory for a grid (created if missing); output ROOT file for 'calib'."
    ),
    events: Optional[int] = typer.Option(
        None,
        "--events",
        "-n",
        help="Decays per source and point; a neutron source writes two triggers per decay. "
        "Default: the grid's own count; required for 'calib'.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the random streams; the same seed writes the same file."),
    spec_file: Optional[Path] = SpecOption,
    shard: str = typer.Option(
        "1/1", "--shard", help="Simulate shard i of N of the grid's points, written as i/N (1-based)."
    ),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Worker processes; the output does not depend on it."),
    point: Optional[str] = typer.Option(
        None, "--point", help="Parameter point of 'calib' as kB,fC,LY (g/cm2/GeV, dimensionless, photons/MeV)."
    ),
    sources: Optional[str] = typer.Option(
        None, "--sources", help="Comma-separated sources for 'calib' (default: all sources of the spec)."
    ),
    layout: str = typer.Option(
        "tree",
        "--layout",
        help=f"Calibration layout of 'calib': {', '.join(LAYOUT_PRESETS)} (see the ROOT layouts page of the docs).",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
) -> None:
    """Simulate NPE spectra of the calibration sources with the reference simulation.

    For a grid, every source is simulated at every point and written to
    OUT/GRID.root (OUT/GRID_shardIIIofNNN.root with --shard) in the MC grid
    layout. For 'calib', the sources are simulated at --point and written to
    OUT in a calibration layout, as a fit input.
    """
    # Imported here so that --help does not load the simulation tables.
    from neuromct_tf.sim import runner

    spec = read_spec(spec_file)
    if events is not None and events <= 0:
        raise InvalidInputError(f"invalid --events {events}; give a positive number of decays")
    if target == CALIBRATION_TARGET:
        _simulate_calibration(spec, out, events, seed, point, sources, layout, overwrite)
        return
    if point is not None or sources is not None:
        raise InvalidInputError("--point and --sources apply to 'calib' only; a grid simulates its own points and all sources")
    if target not in spec.grid_names:
        raise InvalidInputError(
            f"unknown grid {target!r}; choose one of {', '.join(spec.grid_names)} or {CALIBRATION_TARGET!r}"
        )
    shard_range = runner.parse_shard(shard)
    total = runner.count_grid_events(spec, target, events, shard_range)
    with progress_bar(f"simulate {target}", total, "events") as advance:
        summary = runner.simulate_grid(
            spec, target, out, seed, num_events=events, shard=shard_range, num_jobs=jobs,
            overwrite=overwrite, progress_fn=advance,
        )
    _print_summary(summary)


def _simulate_calibration(spec, out, events, seed, point, sources, layout, overwrite) -> None:
    from neuromct_tf.sim import runner

    if point is None:
        raise InvalidInputError("'calib' needs --point kB,fC,LY, e.g. --point 15.45,0.525,10100")
    if events is None:
        raise InvalidInputError("'calib' needs --events N, the decays per source")
    values = spec.check_point(parse_point(point))
    names = parse_sources(sources, spec) or list(spec.sources)
    calib_layout = layout_preset(layout)
    with progress_bar("simulate calib", events * len(names), "events") as advance:
        summary = runner.simulate_calibration(
            spec, values, events, out, seed, calib_layout, sources=names,
            overwrite=overwrite, progress_fn=advance,
        )
    _print_summary(summary)


def _print_summary(summary) -> None:
    for path in summary.paths:
        STDOUT.print(f"wrote {path}")
    STDOUT.print(
        f"{summary.num_points} point(s), {summary.num_events} decays, {summary.num_triggers} triggers "
        f"in {summary.wall_seconds:.1f} s ({summary.events_per_second:,.0f} decays/s)"
    )
