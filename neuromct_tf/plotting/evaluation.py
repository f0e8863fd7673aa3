"""Figure of a surrogate evaluation: median metrics per source and example spectra."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from neuromct_tf.errors import InvalidInputError
from neuromct_tf.io.atomic import atomic_output
from neuromct_tf.specs import DataSpec
from neuromct_tf.validation.evaluate import EvaluationResult

logger = logging.getLogger(__name__)


def plot_evaluation(result: EvaluationResult, spec: DataSpec, path: str | Path, overwrite: bool = False) -> Path:
    """Draw the evaluation of surrogates into a PNG file.

    The figure has three panels: the median W1 of each surrogate per source
    as grouped bars, the median chi-square per degree of freedom likewise
    (log scale), and the predicted and test spectra of every source at the
    result's example point.

    Parameters
    ----------
    result : EvaluationResult
        The evaluation to draw.
    spec : DataSpec
        Gives the bin edges; must have the result's sources and number of bins.
    path : str or pathlib.Path
        Output PNG file, written atomically.
    overwrite : bool
        Replace an existing file.

    Raises
    ------
    InvalidInputError
        If the spec does not match the result.
    OutputError
        If the file exists without ``overwrite`` or cannot be written.
    """
    if tuple(spec.sources) != result.sources or spec.binning.num_bins != result.example_reference.shape[-1]:
        raise InvalidInputError(
            f"the spec has sources {list(spec.sources)} and {spec.binning.num_bins} bins, but the evaluation has "
            f"{list(result.sources)} and {result.example_reference.shape[-1]}; use the spec of the evaluation"
        )
    figure = Figure(figsize=(15, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    bars_w1, bars_chi2, spectra = figure.subplots(1, 3)

    summary = result.summary()
    _draw_grouped_bars(bars_w1, result, summary, "wasserstein", f"median W1 [{spec.binning.unit}]")
    _draw_grouped_bars(bars_chi2, result, summary, "chi2_per_ndf", "median χ²/ndf")
    bars_chi2.set_yscale("log")
    bars_chi2.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
    _draw_example_spectra(spectra, result, spec)

    with atomic_output(path, overwrite=overwrite) as temporary:
        figure.savefig(temporary, format="png", dpi=100)
    logger.info("wrote the evaluation figure %s", path)
    return Path(path)


def _draw_grouped_bars(axes, result: EvaluationResult, summary: dict, metric: str, label: str) -> None:
    positions = np.arange(len(result.sources))
    width = 0.8 / len(result.surrogates)
    for m, surrogate in enumerate(result.surrogates):
        heights = [summary[surrogate][source][metric] for source in result.sources]
        axes.bar(positions + (m - (len(result.surrogates) - 1) / 2) * width, heights, width, label=surrogate)
    axes.set_xticks(positions, result.sources)
    axes.set_ylabel(label)
    axes.legend(fontsize="small")


def _draw_example_spectra(axes, result: EvaluationResult, spec: DataSpec) -> None:
    edges = spec.binning.edges_array()
    widths = np.diff(edges)
    axes.stairs(result.example_reference.sum(axis=0) / widths, edges, color="black", linewidth=1.5, label="test")
    for m, surrogate in enumerate(result.surrogates):
        # Sources are drawn as one curve per surrogate, so the legend stays short.
        density = result.example_predicted[m].sum(axis=0) / widths
        axes.stairs(density, edges, linewidth=1.0, label=surrogate)
    kb, fc, ly = result.points[result.example_point]
    axes.set_title(f"all sources at kB={kb:g}, fC={fc:g}, LY={ly:g}", fontsize="medium")
    axes.set_xlabel(f"NPE [{spec.binning.unit}]")
    axes.set_ylabel(f"density summed over sources [1/{spec.binning.unit}]")
    axes.legend(fontsize="small")
