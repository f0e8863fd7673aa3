"""Plots of NPE spectra: predicted spectra and observed calibration spectra."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neuromct_tf.io.atomic import atomic_output  # noqa: E402
from neuromct_tf.specs import DataSpec  # noqa: E402


def _save(figure, path: str | Path, overwrite: bool) -> None:
    with atomic_output(path, overwrite) as temporary:
        figure.savefig(temporary, format="png", dpi=110)
    plt.close(figure)


def plot_predicted_spectra(prediction, spec: DataSpec, path: str | Path, overwrite: bool = False) -> None:
    """Draw the predicted spectrum of every source at one point, one panel per source, into a PNG."""
    edges = spec.binning.edges_array()
    figure, axes = plt.subplots(len(prediction.sources), 1, figsize=(7, 2.2 * len(prediction.sources) + 0.6), sharex=True, squeeze=False)
    for axis, name, row in zip(axes[:, 0], prediction.sources, prediction.probabilities):
        axis.stairs(row, edges, color="C0")
        axis.set_title(name, loc="left", fontsize=10)
        axis.set_ylabel("probability / bin")
    axes[-1, 0].set_xlabel(f"NPE [{spec.binning.unit}]")
    kb, fc, ly = prediction.point
    figure.suptitle(f"predicted spectra at kB = {kb:g} g/cm²/GeV, fC = {fc:g}, LY = {ly:g} /MeV")
    figure.tight_layout()
    _save(figure, path, overwrite)


def plot_calibration_spectra(data, spec: DataSpec, path: str | Path, overwrite: bool = False) -> None:
    """Draw the observed counts of every source of a calibration input into a PNG, one panel per source."""
    edges = spec.binning.edges_array()
    figure, axes = plt.subplots(len(data.sources), 1, figsize=(7, 2.2 * len(data.sources) + 0.6), sharex=True, squeeze=False)
    for axis, source in zip(axes[:, 0], data.sources):
        axis.stairs(source.counts, edges, color="C0")
        axis.set_title(
            f"{source.source}: {source.num_entries} entries, {source.num_underflow} below and "
            f"{source.num_overflow} above the range", loc="left", fontsize=9,
        )
        axis.set_ylabel(f"entries / {np.median(np.diff(edges)):g} {spec.binning.unit}")
    axes[-1, 0].set_xlabel(f"NPE [{spec.binning.unit}]")
    figure.tight_layout()
    _save(figure, path, overwrite)
