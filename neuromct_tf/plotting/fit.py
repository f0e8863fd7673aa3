"""Plots of a fit: the corner plot of the posterior and the data against the best-fit spectra."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import corner  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neuromct_tf.inference.fit import FitResult  # noqa: E402
from neuromct_tf.io.atomic import atomic_output  # noqa: E402
from neuromct_tf.specs import DataSpec  # noqa: E402


def _save(figure, path: str | Path, overwrite: bool) -> Path:
    with atomic_output(path, overwrite) as temporary:
        figure.savefig(temporary, format="png", dpi=110)
    plt.close(figure)
    return Path(path)


def _label(spec: DataSpec, index: int) -> str:
    parameter = spec.parameters[index]
    return parameter.name if parameter.unit in ("", "dimensionless", "1") else f"{parameter.name} [{parameter.unit}]"


def plot_corner(result: FitResult, spec: DataSpec, path: str | Path, overwrite: bool = False) -> Path:
    """Draw the corner plot of the posterior draws of kB, fC and LY into a PNG.

    The dashed lines of the one-dimensional histograms mark the 16 %, 50 % and
    84 % quantiles. The true point, when the fit has one, is drawn in blue.

    Raises
    ------
    ValueError
        If the result has no posterior draws (an MLE fit).
    """
    if result.posterior is None:
        raise ValueError("an MLE result has no posterior draws for a corner plot")
    draws = result.posterior.flat()[:, :3]
    figure = corner.corner(
        draws,
        labels=[_label(spec, i) for i in range(3)],
        truths=None if result.truth is None else list(result.truth),
        truth_color="C0",
        quantiles=(0.16, 0.5, 0.84),
        show_titles=True,
        title_fmt=".4g",
        label_kwargs={"fontsize": 11},
        title_kwargs={"fontsize": 10},
    )
    config = result.posterior.config
    # Room above the top panel's title for the figure title.
    figure.subplots_adjust(top=0.88)
    figure.suptitle(
        f"{config.sampler.upper()} posterior, {config.num_chains} chains x {config.num_results} draws"
        f" ({', '.join(result.observed.sources)})",
        fontsize=10,
        y=0.99,
    )
    return _save(figure, path, overwrite)


def plot_fit_spectra(result: FitResult, spec: DataSpec, path: str | Path, overwrite: bool = False) -> Path:
    """Draw the observed counts of every source against the best-fit expected counts, with residual panels.

    The best fit is :attr:`FitResult.best_point`. A residual panel shows the
    Pearson residual (k - lambda) / sqrt(lambda) per bin.
    """
    edges = spec.binning.edges_array()
    centres = 0.5 * (edges[1:] + edges[:-1])
    observed = result.observed
    num_sources = len(observed.sources)
    figure = plt.figure(figsize=(7.5, 3.2 * num_sources + 0.8))
    # One block per source, spaced for its title, each a spectrum panel over a residual panel.
    blocks = figure.add_gridspec(num_sources, 1, hspace=0.35)
    for index, name in enumerate(observed.sources):
        counts = observed.counts[index]
        expected = result.best_counts[index]
        panels = blocks[index].subgridspec(2, 1, height_ratios=[3, 1], hspace=0.06)
        spectrum_axis = figure.add_subplot(panels[0])
        residual_axis = figure.add_subplot(panels[1], sharex=spectrum_axis)
        spectrum_axis.errorbar(
            centres, counts, yerr=np.sqrt(counts), fmt=".", markersize=2, color="k", elinewidth=0.6, label="data"
        )
        spectrum_axis.stairs(expected, edges, color="C1", linewidth=1.2, label="best fit")
        norm = result.best_point[3 + index]
        spectrum_axis.set_title(
            f"{name}: {int(observed.num_in_range[index])} entries in range, {int(observed.num_underflow[index])} below, "
            f"{int(observed.num_overflow[index])} above; norm {norm:.4f}",
            loc="left", fontsize=9,
        )
        spectrum_axis.set_ylabel(f"entries / {np.median(np.diff(edges)):g} {spec.binning.unit}")
        spectrum_axis.tick_params(labelbottom=False)
        spectrum_axis.legend(fontsize=8, loc="upper right")
        with np.errstate(divide="ignore", invalid="ignore"):
            residuals = np.where(expected > 0, (counts - expected) / np.sqrt(expected), 0.0)
        residual_axis.stairs(residuals, edges, color="C1", linewidth=0.8)
        residual_axis.axhline(0.0, color="k", linewidth=0.6)
        residual_axis.set_ylim(-5, 5)
        residual_axis.set_ylabel("pull", fontsize=9)
    residual_axis.set_xlabel(f"NPE [{spec.binning.unit}]")
    kb, fc, ly = result.best_point[:3]
    label = "highest-posterior draw" if result.method == "mcmc" else "MLE"
    figure.suptitle(f"{label}: kB = {kb:.4g}, fC = {fc:.4g}, LY = {ly:.5g}", fontsize=11)
    figure.subplots_adjust(top=1.0 - 0.9 / figure.get_figheight(), bottom=0.5 / figure.get_figheight(), left=0.12, right=0.97)
    return _save(figure, path, overwrite)
