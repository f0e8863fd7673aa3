"""Plots of the validation studies: statistics against the exposure, and bias maps over a grid."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neuromct_tf.plotting.fit import _label, _save  # noqa: E402
from neuromct_tf.validation.campaigns import ExposureStudy, GridStudy  # noqa: E402


def _series(study: ExposureStudy, index: int, field: str) -> np.ndarray:
    return np.array([getattr(study.statistics[e][index], field) for e in study.exposures], dtype=np.float64)


def plot_exposure_study(study: ExposureStudy, path: str | Path, overwrite: bool = False) -> Path:
    """Draw bias, resolution, pulls and coverage of kB, fC and LY against the exposure into a PNG.

    One column per parameter. Rows, top to bottom:

    1. resolution: spread of the MLEs, median Hessian sigma and the Cramér–Rao
       bound (all in the parameter's unit, log-log), with a line proportional
       to 1/sqrt(N) through the spread at the largest exposure;
    2. median bias in units of the median sigma, with the band of +-0.1;
    3. pull mean and pull width, with the ideal values 0 and 1;
    4. coverage of the 68.27 % and 95 % intervals, with the nominal values.

    Error bars are the standard errors of the statistics.
    """
    exposures = np.array(study.exposures, dtype=np.float64)
    figure, axes = plt.subplots(4, 3, figsize=(13, 12), sharex=True)
    for index in range(3):
        label = _label(study.spec, index)
        crb = _series(study, index, "crb")
        spread = _series(study, index, "spread")

        axis = axes[0, index]
        axis.loglog(exposures, spread, "o-", label="spread of the MLEs")
        axis.loglog(exposures, _series(study, index, "median_sigma"), "s--", label="median Hessian σ")
        axis.loglog(exposures, crb, "k^:", label="Cramér–Rao bound")
        if np.isfinite(spread[-1]):
            axis.loglog(exposures, spread[-1] * np.sqrt(exposures[-1] / exposures), color="0.6", lw=3, alpha=0.5,
                        zorder=0, label="∝ 1/√N through the last spread")
        axis.set_ylabel(f"resolution of {label}")
        axis.set_title(label)

        axis = axes[1, index]
        bias = _series(study, index, "bias_in_sigma")
        error = _series(study, index, "median_bias_error") / _series(study, index, "median_sigma")
        axis.axhspan(-0.1, 0.1, color="C2", alpha=0.15, label="±0.1 σ")
        axis.axhline(0.0, color="k", lw=0.8)
        axis.errorbar(exposures, bias, yerr=error, fmt="o-", capsize=3, label="median bias / median σ")
        axis.set_ylabel("median bias / σ")

        axis = axes[2, index]
        axis.axhline(0.0, color="k", lw=0.8)
        axis.axhline(1.0, color="k", lw=0.8, ls="--")
        axis.errorbar(exposures, _series(study, index, "pull_mean"), yerr=_series(study, index, "pull_mean_error"),
                      fmt="o-", capsize=3, label="pull mean")
        axis.errorbar(exposures, _series(study, index, "pull_width"), yerr=_series(study, index, "pull_width_error"),
                      fmt="s-", capsize=3, label="pull width")
        axis.set_ylabel("pull")

        axis = axes[3, index]
        for field, nominal, marker in (("coverage68", 0.6827, "o"), ("coverage95", 0.95, "s")):
            axis.axhline(nominal, color="k", lw=0.8, ls="--")
            axis.errorbar(exposures, _series(study, index, field), yerr=_series(study, index, f"{field}_error"),
                          fmt=f"{marker}-", capsize=3, label=f"{field[-2:]} % interval")
        axis.set_ylabel("coverage")
        axis.set_xlabel("decays per source")
        axis.set_xscale("log")
        # A log axis around a single exposure has zero width, and matplotlib then draws empty panels.
        axis.set_xlim(exposures.min() / 1.5, exposures.max() * 1.5)
    for row in range(4):
        axes[row, 0].legend(fontsize=7, loc="best")
    truth = ", ".join(f"{v:g}" for v in study.truth)
    if study.settings.method == "hmc":
        method = "posterior means and standard deviations from batched HMC"
    else:
        method = "MLE with Hessian errors"
    figure.suptitle(
        f"{study.settings.num_datasets} {study.settings.data_source} datasets per exposure at kB, fC, LY = {truth}; {method}",
        fontsize=10,
    )
    figure.tight_layout()
    return _save(figure, path, overwrite)


def plot_grid_bias(study: GridStudy, path: str | Path, overwrite: bool = False) -> Path:
    """Draw maps of the median bias in units of sigma over the grid into a PNG.

    Row i shows the bias of parameter i; the columns project the true
    points onto the planes kB-fC, kB-LY and fC-LY. Where several points fall
    on one position of a plane (a product grid), the marker shows their mean,
    and its size grows with the largest absolute bias among them. The colour scale
    is symmetric and saturates at +-0.5 sigma.
    """
    bias = np.array([[entry.bias_in_sigma for entry in statistics] for statistics in study.statistics])
    planes = ((0, 1), (0, 2), (1, 2))
    figure, axes = plt.subplots(3, 3, figsize=(13, 11), layout="constrained")
    limit = 0.5
    image = None
    for row in range(3):
        for column, (x_index, y_index) in enumerate(planes):
            axis = axes[row, column]
            positions = study.points[:, [x_index, y_index]]
            unique, inverse = np.unique(positions, axis=0, return_inverse=True)
            inverse = inverse.reshape(-1)
            mean = np.array([np.nanmean(bias[inverse == k, row]) if np.any(np.isfinite(bias[inverse == k, row])) else np.nan
                             for k in range(len(unique))])
            worst = np.array([np.nanmax(np.abs(bias[inverse == k, row])) if np.any(np.isfinite(bias[inverse == k, row])) else 0.0
                              for k in range(len(unique))])
            image = axis.scatter(unique[:, 0], unique[:, 1], c=mean, s=20 + 200 * np.clip(worst, 0, 1), cmap="coolwarm",
                                 vmin=-limit, vmax=limit, edgecolors="k", linewidths=0.3)
            axis.set_xlabel(_label(study.spec, x_index))
            axis.set_ylabel(_label(study.spec, y_index))
            axis.set_title(f"median bias of {study.spec.parameters[row].name} / σ", fontsize=9)
    figure.colorbar(image, ax=axes, shrink=0.6, label="median bias / median σ (mean over points at one position)")
    figure.suptitle(
        f"grid {study.grid_name}: {len(study.point_indices)} points, {study.settings.num_datasets} "
        f"{study.settings.data_source} datasets each, {study.exposure} decays per source",
        fontsize=10,
    )
    return _save(figure, path, overwrite)
