"""Files and tables of the validation studies: ROOT trees, JSON summaries and printed tables."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
from rich import box
from rich.table import Table

from neuromct_tf._version import __version__
from neuromct_tf.inference.output import _finite_or_none
from neuromct_tf.io.atomic import atomic_output
from neuromct_tf.io.metadata import FileMetadata, write_metadata
from neuromct_tf.io.rootfile import create_root
from neuromct_tf.specs.model import PARAMETER_NAMES
from neuromct_tf.validation.campaigns import DatasetFits, ExposureStudy, GridStudy, statistics_rows
from neuromct_tf.validation.fisher import MIN_REFERENCE_ENTRIES
from neuromct_tf.validation.statistics import ParameterStatistics

#: Name of the TTree of per-dataset fits.
FITS_TREE = "fits"
#: Name of the TTree of statistics, one entry per (exposure or point, parameter).
STATISTICS_TREE = "statistics"

_STATISTIC_FIELDS = tuple(name for name in ParameterStatistics.__dataclass_fields__ if name != "name")


def _fit_branches(fits: DatasetFits, names, sources) -> dict[str, np.ndarray]:
    branches = {"dataset": fits.datasets.astype(np.int64)}
    for index, name in enumerate(names):
        branches[name] = fits.points[:, index]
        branches[f"{name}_error"] = fits.errors[:, index]
    branches["negative_log_likelihood"] = fits.negative_log_likelihood
    branches["edm"] = fits.edm
    branches["converged"] = fits.converged.astype(bool)
    branches["positive_definite"] = fits.positive_definite.astype(bool)
    branches["at_edge"] = fits.at_edge.astype(bool)
    for index, source in enumerate(sources):
        branches[f"in_range_{source}"] = fits.num_in_range[:, index].astype(np.int64)
        branches[f"underflow_{source}"] = fits.num_underflow[:, index].astype(np.int64)
        branches[f"overflow_{source}"] = fits.num_overflow[:, index].astype(np.int64)
    return branches


def _statistics_branches(rows: list[tuple[dict, ParameterStatistics]]) -> dict[str, np.ndarray]:
    keys = rows[0][0].keys()
    branches = {key: np.array([row[key] for row, _ in rows]) for key in keys}
    branches["parameter"] = np.array([PARAMETER_NAMES.index(entry.name) for _, entry in rows], dtype=np.int32)
    for name in _STATISTIC_FIELDS:
        dtype = np.int64 if name == "num_datasets" else np.float64
        branches[name] = np.array([getattr(entry, name) for _, entry in rows], dtype=dtype)
    return branches


def _write_trees(path: Path, metadata: FileMetadata, fits: dict, statistics: dict, overwrite: bool) -> Path:
    # mktree and extend write a TTree, whereas assigning a dict to file[name] would write an RNTuple.
    with atomic_output(path, overwrite) as temporary, create_root(temporary) as file:
        write_metadata(file, metadata)
        tree = file.mktree(FITS_TREE, {name: values.dtype for name, values in fits.items()}, title="MLE fit of each pseudo-dataset")
        tree.extend(fits)
        tree = file.mktree(
            STATISTICS_TREE, {name: values.dtype for name, values in statistics.items()},
            title="bias, resolution, pulls and coverage per parameter (parameter 0 kB, 1 fC, 2 LY)",
        )
        tree.extend(statistics)
    return Path(path)


def write_exposure_root(study: ExposureStudy, path: str | Path, overwrite: bool = False) -> Path:
    """Write the fits and statistics of an exposure study to TTrees ``fits`` and ``statistics``.

    ``fits`` has one entry per dataset: ``exposure`` (int64), ``dataset``, each
    parameter and its ``_error``, ``negative_log_likelihood``, ``edm``, the
    flags ``converged``, ``positive_definite``, ``at_edge``, and the entries
    ``in_range_``, ``underflow_``, ``overflow_`` per source. ``statistics`` has
    one entry per (exposure, parameter), the fields of
    :class:`~neuromct_tf.validation.statistics.ParameterStatistics`, with
    ``parameter`` 0, 1, 2 for kB, fC, LY.
    """
    parts = []
    for exposure in study.exposures:
        branches = _fit_branches(study.fits[exposure], study.names, study.spec.sources)
        branches = {"exposure": np.full(branches["dataset"].shape, exposure, dtype=np.int64), **branches}
        parts.append(branches)
    fits = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    rows = [({"exposure": exposure}, entry) for exposure in study.exposures for entry in study.statistics[exposure]]
    metadata = FileMetadata(
        kind="validation_exposure", spec=study.spec.to_dict(), seed=study.settings.seed,
        details={"settings": asdict(study.settings), "truth": study.truth.tolist(), "model": str(study.model_path)},
    )
    return _write_trees(Path(path), metadata, fits, _statistics_branches(rows), overwrite)


def write_grid_root(study: GridStudy, path: str | Path, overwrite: bool = False) -> Path:
    """Write the fits and statistics of a grid study to TTrees ``fits`` and ``statistics``.

    As :func:`write_exposure_root`, with ``point_index`` (the grid index) and
    ``true_kB``, ``true_fC``, ``true_LY`` in place of ``exposure``.
    """
    parts = []
    for index, point, fits in zip(study.point_indices, study.points, study.fits):
        branches = _fit_branches(fits, study.names, study.spec.sources)
        size = branches["dataset"].shape
        head = {"point_index": np.full(size, index, dtype=np.int64)}
        head.update({f"true_{name}": np.full(size, value) for name, value in zip(PARAMETER_NAMES, point)})
        parts.append({**head, **branches})
    fits = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    rows = [
        ({"point_index": int(index), **{f"true_{n}": float(v) for n, v in zip(PARAMETER_NAMES, point)}}, entry)
        for index, point, statistics in zip(study.point_indices, study.points, study.statistics)
        for entry in statistics
    ]
    metadata = FileMetadata(
        kind="validation_grid", spec=study.spec.to_dict(), seed=study.settings.seed,
        details={"settings": asdict(study.settings), "grid": study.grid_name, "exposure": study.exposure,
                 "model": str(study.model_path)},
    )
    return _write_trees(Path(path), metadata, fits, _statistics_branches(rows), overwrite)


def _fit_counts(fits: DatasetFits) -> dict:
    return {
        "num_datasets": int(fits.datasets.size),
        "converged": int(fits.converged.sum()),
        "not_positive_definite": int((~fits.positive_definite).sum()),
        "at_edge": int(fits.at_edge.sum()),
        "simulation_seconds": fits.simulation_seconds,
        "fit_seconds": fits.fit_seconds,
    }


def exposure_summary(study: ExposureStudy) -> dict:
    """Return the content of ``exposure_summary.json``: settings, timings, statistics and bounds per exposure."""
    bounds = {}
    for exposure in study.exposures:
        check = study.bounds[exposure]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = check.crb_simulation / check.crb_surrogate_differences
        bounds[str(exposure)] = {
            "expected_counts": dict(zip(study.spec.sources, check.expected_counts.tolist())),
            "crb": dict(zip(PARAMETER_NAMES, check.crb.tolist())),
            "crb_surrogate_differences": dict(zip(PARAMETER_NAMES, check.crb_surrogate_differences.tolist())),
            "crb_simulation": dict(zip(PARAMETER_NAMES, check.crb_simulation.tolist())),
            "simulation_over_surrogate": dict(zip(PARAMETER_NAMES, ratio.tolist())),
        }
    content = {
        "neuromct_tf_version": __version__,
        "model": str(study.model_path),
        "settings": asdict(study.settings),
        "truth": dict(zip(PARAMETER_NAMES, study.truth.tolist())),
        "exposures": list(study.exposures),
        "fits": {str(e): _fit_counts(study.fits[e]) for e in study.exposures},
        "statistics": {str(e): statistics_rows(study.statistics[e]) for e in study.exposures},
        "cramer_rao": {
            "steps": dict(zip(PARAMETER_NAMES, study.fisher_steps.tolist())),
            "simulation_events": study.fisher_events,
            "min_reference_entries": MIN_REFERENCE_ENTRIES,
            "bounds": bounds,
        },
        "wall_seconds": study.wall_seconds,
    }
    return _finite_or_none(content)


def grid_summary(study: GridStudy) -> dict:
    """Return the content of ``grid_summary.json``: settings, and statistics and bounds per point."""
    points = []
    for index, point, fits, statistics, crb in zip(study.point_indices, study.points, study.fits, study.statistics, study.crb):
        points.append({
            "point_index": int(index),
            "truth": dict(zip(PARAMETER_NAMES, point.tolist())),
            "fits": _fit_counts(fits),
            "crb": dict(zip(PARAMETER_NAMES, crb.tolist())),
            "statistics": statistics_rows(statistics),
        })
    content = {
        "neuromct_tf_version": __version__,
        "model": str(study.model_path),
        "settings": asdict(study.settings),
        "grid": study.grid_name,
        "exposure": study.exposure,
        "overview": grid_overview(study),
        "points": points,
        "wall_seconds": study.wall_seconds,
    }
    return _finite_or_none(content)


def grid_overview(study: GridStudy) -> dict:
    """Return per parameter the median and maximum of the absolute bias / sigma over the points, and the fraction above 0.1."""
    overview = {}
    for index, name in enumerate(PARAMETER_NAMES):
        values = np.array([entry[index].bias_in_sigma for entry in study.statistics])
        finite = np.abs(values[np.isfinite(values)])
        overview[name] = {
            "points": int(finite.size),
            "median_abs_bias_in_sigma": float(np.median(finite)) if finite.size else float("nan"),
            "max_abs_bias_in_sigma": float(np.max(finite)) if finite.size else float("nan"),
            "fraction_above_0.1": float(np.mean(finite > 0.1)) if finite.size else float("nan"),
        }
    return overview


def write_json(content: dict, path: str | Path, overwrite: bool = False) -> Path:
    """Write a summary as indented strict JSON, atomically."""
    text = json.dumps(content, indent=2, allow_nan=False)
    with atomic_output(path, overwrite) as temporary:
        temporary.write_text(text + "\n")
    return Path(path)


def _format(value: float, digits: int = 3) -> str:
    return "nan" if not math.isfinite(value) else f"{value:.{digits}g}"


def _with_error(value: float, error: float, digits: int = 2) -> str:
    if not math.isfinite(value):
        return "nan"
    return f"{value:+.{digits}f} ± {error:.{digits}f}"


def exposure_table(study: ExposureStudy) -> Table:
    """Return the table of bias and resolution per exposure and parameter, against the Cramér–Rao bound."""
    table = Table(
        title=f"bias and resolution, {study.settings.num_datasets} {study.settings.data_source} datasets per exposure",
        caption=(
            "bias/σ: median bias / median posterior σ; spread: std of the posterior means; CRB: Cramér–Rao bound"
            if study.settings.method == "hmc"
            else "bias/σ: median bias / median Hessian σ; spread: std of the MLEs; CRB: Cramér–Rao bound"
        ),
        box=box.SIMPLE_HEAD,
    )
    for column in ("exposure", "param", "fits", "bias/σ", "spread", "median σ", "CRB", "spread/CRB", "σ/CRB"):
        table.add_column(column, justify="right")
    for exposure in study.exposures:
        for entry in study.statistics[exposure]:
            table.add_row(
                str(exposure), entry.name, str(entry.num_datasets), f"{entry.bias_in_sigma:+.3f}", _format(entry.spread),
                _format(entry.median_sigma), _format(entry.crb), f"{entry.spread_over_crb:.3f}", f"{entry.sigma_over_crb:.3f}",
            )
    return table


def pulls_table(study: ExposureStudy) -> Table:
    """Return the table of pull mean and width and interval coverage per exposure and parameter."""
    table = Table(
        title=(
            "pulls (posterior mean - truth) / σ and coverage of mean ± z σ"
            if study.settings.method == "hmc"
            else "pulls (MLE - truth) / σ and coverage of MLE ± z σ"
        ),
        caption="± values are standard errors; nominal coverage 0.683 and 0.950",
        box=box.SIMPLE_HEAD,
    )
    for column in ("exposure", "param", "pull mean", "pull width", "68 % coverage", "95 % coverage"):
        table.add_column(column, justify="right")
    for exposure in study.exposures:
        for entry in study.statistics[exposure]:
            table.add_row(
                str(exposure), entry.name, _with_error(entry.pull_mean, entry.pull_mean_error),
                _with_error(entry.pull_width, entry.pull_width_error).lstrip("+"),
                _with_error(entry.coverage68, entry.coverage68_error, 3).lstrip("+"),
                _with_error(entry.coverage95, entry.coverage95_error, 3).lstrip("+"),
            )
    return table


def bounds_table(study: ExposureStudy) -> Table:
    """Return the Cramér–Rao bounds per exposure: surrogate by autodiff and by differences, and simulation."""
    table = Table(
        title="Cramér–Rao bounds",
        caption=(
            f"autodiff: surrogate, all bins; differences: surrogate and simulation, steps "
            f"{', '.join(f'{n} {_format(h)}' for n, h in zip(PARAMETER_NAMES, study.fisher_steps))}, "
            f"bins with ≥ {MIN_REFERENCE_ENTRIES} reference entries"
        ),
        box=box.SIMPLE_HEAD,
    )
    for column in ("exposure", "param", "autodiff", "surrogate diff.", "simulation diff.", "simulation/surrogate"):
        table.add_column(column, justify="right")
    for exposure in study.exposures:
        check = study.bounds[exposure]
        for index, name in enumerate(PARAMETER_NAMES):
            ratio = check.crb_simulation[index] / check.crb_surrogate_differences[index]
            table.add_row(
                str(exposure), name, _format(check.crb[index], 4), _format(check.crb_surrogate_differences[index], 4),
                _format(check.crb_simulation[index], 4), _format(ratio, 4),
            )
    return table


def grid_table(study: GridStudy) -> Table:
    """Return the overview of a grid study: median and maximum absolute bias / sigma, pulls and coverage over the points."""
    overview = grid_overview(study)
    table = Table(
        title=f"{len(study.point_indices)} points of grid {study.grid_name}, {study.settings.num_datasets} datasets each, "
        f"{study.exposure} decays per source",
        box=box.SIMPLE_HEAD,
    )
    for column in ("param", "points", "median |bias|/σ", "max |bias|/σ", "points > 0.1 σ", "median pull width",
                   "median 68 %", "median spread/CRB"):
        table.add_column(column, justify="right")
    for index, name in enumerate(PARAMETER_NAMES):
        entries = [statistics[index] for statistics in study.statistics]
        row = overview[name]
        table.add_row(
            name, str(row["points"]), _format(row["median_abs_bias_in_sigma"]), _format(row["max_abs_bias_in_sigma"]),
            f"{row['fraction_above_0.1']:.0%}" if math.isfinite(row["fraction_above_0.1"]) else "nan",
            _format(float(np.nanmedian([e.pull_width for e in entries]))),
            _format(float(np.nanmedian([e.coverage68 for e in entries]))),
            _format(float(np.nanmedian([e.spread_over_crb for e in entries]))),
        )
    return table
