"""``neuromct-tf inspect``: print what an MC grid or calibration file holds."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.table import Table

from neuromct_tf.cli.common import (
    STDOUT,
    BranchOption,
    LayoutOption,
    NpeUnitOption,
    ObjectNameOption,
    SourceFilesOption,
    SpecOption,
    parse_source_files,
    read_spec,
)
from neuromct_tf.errors import InvalidInputError
from neuromct_tf.io.atomic import check_output_path
from neuromct_tf.io.calib import layout_preset, read_calibration
from neuromct_tf.io.mcgrid import TREE_NAME, summarize_mc_grid
from neuromct_tf.io.metadata import read_metadata
from neuromct_tf.io.rootfile import open_root


def inspect_files(
    path: Optional[Path] = typer.Argument(
        None, help="An MC grid file, or a calibration file holding all sources. Omit it when using --file."
    ),
    files: Optional[list[str]] = SourceFilesOption,
    layout: str = LayoutOption,
    object_name: Optional[str] = ObjectNameOption,
    branch: Optional[str] = BranchOption,
    npe_unit: Optional[str] = NpeUnitOption,
    plot: Optional[Path] = typer.Option(None, "--plot", help="PNG file with the calibration spectra of every source."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --plot file."),
    spec_file: Optional[Path] = SpecOption,
) -> None:
    """Print the provenance and per-source content of an MC grid or calibration file.

    Calibration data are binned in the spec's NPE binning; entries below and
    above its range are reported separately.
    """
    spec = read_spec(spec_file)
    if (path is None) == (not files):
        raise InvalidInputError("give either one PATH or --file SOURCE=PATH options, not both or neither")
    calib_layout = layout_preset(layout).with_options(object_name, branch, npe_unit)
    if plot is not None:
        check_output_path(plot, overwrite)
    if files:
        data = read_calibration(parse_source_files(files), spec, calib_layout)
        _show_calibration(data, spec, plot, overwrite)
        return
    directory = open_root(path)
    metadata = read_metadata(directory, path)
    if metadata is not None:
        STDOUT.print(f"{path}: written by neuromct-tf {metadata.version}, kind {metadata.kind}, seed {metadata.seed}")
        for key, value in metadata.details.items():
            STDOUT.print(f"  {key}: {value}")
    if TREE_NAME in directory.keys(cycle=False) and (metadata is None or metadata.kind == "mc_grid"):
        if plot is not None:
            raise InvalidInputError(f"--plot draws calibration spectra, and {path} is an MC grid file")
        _print_mc_grid(path, spec)
        return
    _show_calibration(read_calibration(path, spec, calib_layout), spec, plot, overwrite)


def _show_calibration(data, spec, plot: Optional[Path], overwrite: bool) -> None:
    _print_calibration(data, spec)
    if plot is not None:
        from neuromct_tf.plotting.spectra import plot_calibration_spectra

        plot_calibration_spectra(data, spec, plot, overwrite=overwrite)
        STDOUT.print(f"wrote {plot}")


def _print_mc_grid(path: Path, spec) -> None:
    summary = summarize_mc_grid(path, len(spec.sources), spec)
    table = Table(title=f"{path}: MC grid, {summary.num_points} points, {summary.info.num_entries} entries")
    for column in ("source", "entries", "mean NPE [kNPE]"):
        table.add_column(column, justify="right")
    for source_id, name in enumerate(spec.sources):
        table.add_row(name, str(summary.entries[source_id]), f"{summary.mean_npe[source_id]:.4f}")
    STDOUT.print(table)


def _print_calibration(data, spec) -> None:
    centres = 0.5 * (spec.binning.edges_array()[1:] + spec.binning.edges_array()[:-1])
    table = Table(title=f"calibration data in {spec.binning.describe()}")
    for column in ("source", "file", "object", "entries", "in range", "below", "above", "mean [kNPE]", "peak [kNPE]"):
        table.add_column(column, justify="right")
    for source in data.sources:
        in_range = int(source.counts.sum())
        mean = float(np.dot(source.counts, centres) / in_range) if in_range else float("nan")
        peak = float(centres[np.argmax(source.counts)]) if in_range else float("nan")
        table.add_row(
            source.source, source.path.name, source.object_name, str(source.num_entries), str(in_range),
            str(source.num_underflow), str(source.num_overflow), f"{mean:.4f}", f"{peak:.3f}",
        )
    STDOUT.print(table)
    if data.missing:
        STDOUT.print(f"sources not found: {', '.join(data.missing)}")
