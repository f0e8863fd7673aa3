"""The ``fit`` job: read calibration files, load the regressor, fit, and write every output."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from neuromct_tf.inference.fit import FitConfig, FitResult, run_fit
from neuromct_tf.inference.model import ObservedSpectra
from neuromct_tf.inference.output import prepare_output_dir, write_chains_root, write_result_json
from neuromct_tf.io.calib import LAYOUT_PRESETS, CalibrationLayout, read_calibration
from neuromct_tf.models.bundled import resolve_model_path
from neuromct_tf.models.surrogate import DEFAULT_GAN_SAMPLES, load_surrogate
from neuromct_tf.specs import DataSpec

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitOutputs:
    """A finished fit job.

    Attributes
    ----------
    result : FitResult
        Estimates, draws and diagnostics.
    paths : dict of str to pathlib.Path
        Files written, by role: ``result``, ``spectra``, and for ``mcmc`` ``chains`` and ``corner``.
    model_path : pathlib.Path
        The regressor used.
    wall_seconds : float
        Wall time of the job, reading and writing included.
    """

    result: FitResult
    paths: dict
    model_path: Path
    wall_seconds: float


def fit_calibration(
    inputs: str | Path | Mapping[str, str | Path],
    spec: DataSpec,
    out_dir: str | Path,
    config: FitConfig = FitConfig(),
    layout: CalibrationLayout = LAYOUT_PRESETS["tree"],
    model_path: str | Path | None = None,
    overwrite: bool = False,
    gan_samples: int = DEFAULT_GAN_SAMPLES,
) -> FitOutputs:
    """Fit calibration data and write ``result.json``, ``spectra.png`` and, for ``mcmc``, ``chains.root`` and ``corner.png``.

    Parameters
    ----------
    inputs : path or mapping of source name to path
        As :func:`~neuromct_tf.io.calib.read_calibration`.
    spec : DataSpec
        Binning, parameter box and sources.
    out_dir : path
        Output directory, created if missing.
    config : FitConfig
        Method, sampler settings, seed, normalisation range and truth.
    layout : CalibrationLayout
        Location of the NPE data in the input files.
    model_path : path, optional
        Regressor or GAN generator ``.keras`` file; the bundled regressor when ``None``.
    overwrite : bool
        Replace existing outputs.
    gan_samples : int
        Noise vectors per (point, source) when the model is a GAN generator,
        drawn with the sampler's seed (:class:`~neuromct_tf.models.surrogate.GanSurrogate`).

    Raises
    ------
    InvalidInputError
        For unreadable input, no known source, a source without entries in
        the binning, or a missing model file.
    SpecMismatchError
        If the input files or the model were made with another spec.
    OutputError
        If an output exists and ``overwrite`` is false.
    """
    start = time.perf_counter()
    data = read_calibration(inputs, spec, layout)
    observed = ObservedSpectra.from_calibration(data, spec)
    path = resolve_model_path(model_path)
    model, _ = load_surrogate(path, spec, num_samples=gan_samples, seed=config.sampler.seed)
    paths = prepare_output_dir(out_dir, config.method, overwrite)
    result = run_fit(model, spec, observed, config)

    write_result_json(result, spec, paths["result"], str(path), overwrite=overwrite, job_seconds=time.perf_counter() - start)
    # Imported here so that the library does not load matplotlib and corner until plots are drawn.
    from neuromct_tf.plotting.fit import plot_corner, plot_fit_spectra

    plot_fit_spectra(result, spec, paths["spectra"], overwrite=overwrite)
    if result.posterior is not None:
        write_chains_root(result, spec, paths["chains"], str(path), overwrite=overwrite)
        plot_corner(result, spec, paths["corner"], overwrite=overwrite)
    wall_seconds = time.perf_counter() - start
    logger.info("fit job finished in %.1f s (fit %.1f s)", wall_seconds, result.timings["total"])
    return FitOutputs(result=result, paths=paths, model_path=path, wall_seconds=wall_seconds)
