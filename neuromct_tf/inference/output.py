"""Files and tables of a fit: ``result.json``, ``chains.root`` and the printed summary."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
from rich import box
from rich.table import Table

from neuromct_tf._version import __version__
from neuromct_tf.inference.fit import FitResult
from neuromct_tf.io.atomic import atomic_output, check_output_path
from neuromct_tf.io.metadata import FileMetadata, write_metadata
from neuromct_tf.io.rootfile import create_root
from neuromct_tf.specs import DataSpec

RESULT_FILE = "result.json"
CHAINS_FILE = "chains.root"
CORNER_FILE = "corner.png"
SPECTRA_FILE = "spectra.png"
#: Name of the TTree of posterior draws in ``chains.root``.
CHAINS_TREE = "chains"


def output_paths(out_dir: str | Path, method: str) -> dict[str, Path]:
    """Return the output files of a fit by role: ``result``, ``spectra``, and for ``mcmc`` ``chains`` and ``corner``."""
    out_dir = Path(out_dir)
    paths = {"result": out_dir / RESULT_FILE, "spectra": out_dir / SPECTRA_FILE}
    if method == "mcmc":
        paths.update(chains=out_dir / CHAINS_FILE, corner=out_dir / CORNER_FILE)
    return paths


def prepare_output_dir(out_dir: str | Path, method: str, overwrite: bool) -> dict[str, Path]:
    """Create ``out_dir`` if needed and check that every output may be written, before the fit runs.

    Raises
    ------
    OutputError
        If an output exists and ``overwrite`` is false, or the directory is not writable.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = output_paths(out_dir, method)
    for path in paths.values():
        check_output_path(path, overwrite)
    return paths


def _finite_or_none(value):
    """Map NaN and infinities to ``None`` so that the JSON file stays strict JSON."""
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(item) for item in value]
    if isinstance(value, np.ndarray):
        return _finite_or_none(value.tolist())
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def result_dict(result: FitResult, spec: DataSpec, model_path: str = "", job_seconds: float | None = None) -> dict:
    """Return the content of ``result.json``: estimates, intervals, diagnostics, settings, counts and timings.

    ``wall_seconds`` is ``job_seconds`` (reading, model loading and fit) when
    given, else the fit time. NaN values (undefined errors) become ``null``.
    """
    truth = dict(zip(("kB", "fC", "LY"), result.truth.tolist())) if result.truth is not None else None
    parameters = {}
    for summary in result.summaries:
        entry = asdict(summary)
        entry.pop("name")
        entry["interval68"] = list(summary.interval68)
        entry["interval95"] = list(summary.interval95)
        if truth is not None and summary.name in truth:
            entry["truth"] = truth[summary.name]
        parameters[summary.name] = entry
    observed = result.observed
    sources = {}
    for index, name in enumerate(observed.sources):
        sources[name] = {
            "file": observed.files[index] if observed.files else None,
            "object": observed.objects[index] if observed.objects else None,
            "entries": int(observed.num_in_range[index] + observed.num_underflow[index] + observed.num_overflow[index]),
            "in_range": int(observed.num_in_range[index]),
            "underflow": int(observed.num_underflow[index]),
            "overflow": int(observed.num_overflow[index]),
        }
    mle = result.mle
    content = {
        "neuromct_tf_version": __version__,
        "method": result.method,
        "model": model_path,
        "binning": spec.binning.describe(),
        "parameter_names": list(result.names),
        "parameters": parameters,
        "best_point": dict(zip(result.names, result.best_point.tolist())),
        "correlation": result.correlation.tolist(),
        "truth": truth,
        "mle": {
            "point": dict(zip(result.names, mle.point.tolist())),
            "errors": dict(zip(result.names, mle.errors.tolist())),
            "covariance": mle.covariance.tolist(),
            "negative_log_likelihood": mle.negative_log_likelihood,
            "estimated_distance_to_minimum": mle.edm,
            "converged": mle.converged,
            "positive_definite_hessian": mle.positive_definite,
            "num_starts": mle.num_starts,
            "num_iterations": mle.num_iterations,
            "num_evaluations": mle.num_evaluations,
        },
        "norm_range": list(result.config.norm_range),
        "sources": sources,
        "missing_sources": list(observed.missing),
        "wall_seconds": result.timings["total"] if job_seconds is None else job_seconds,
        "timings": dict(result.timings),
    }
    if result.posterior is not None:
        diagnostics = result.posterior.diagnostics
        content["diagnostics"] = {
            "r_hat": dict(zip(result.names, diagnostics.r_hat.tolist())),
            "ess": dict(zip(result.names, diagnostics.ess.tolist())),
            "acceptance_rate": diagnostics.acceptance_rate,
            "mean_accept_prob": diagnostics.mean_accept_prob,
            "num_divergences": diagnostics.num_divergences,
            "num_burnin_divergences": diagnostics.num_burnin_divergences,
            "step_size": diagnostics.step_size,
            "mean_leapfrog_steps": diagnostics.mean_leapfrog_steps,
        }
        content["sampler"] = asdict(result.posterior.config)
    return _finite_or_none(content)


def write_result_json(
    result: FitResult,
    spec: DataSpec,
    path: str | Path,
    model_path: str = "",
    overwrite: bool = False,
    job_seconds: float | None = None,
) -> Path:
    """Write :func:`result_dict` as indented JSON, atomically."""
    text = json.dumps(result_dict(result, spec, model_path, job_seconds), indent=2, allow_nan=False)
    with atomic_output(path, overwrite) as temporary:
        temporary.write_text(text + "\n")
    return Path(path)


def write_chains_root(result: FitResult, spec: DataSpec, path: str | Path, model_path: str = "", overwrite: bool = False) -> Path:
    """Write the posterior draws to a TTree ``chains``, one entry per draw, chain by chain.

    Branches: every parameter name (float64), ``log_posterior`` (float64, the
    unnormalised log density), ``divergent`` (bool), ``chain`` and ``draw``
    (int32, 0-based, draws counted after burn-in). The file also carries the
    ``neuromct_metadata`` record of kind ``posterior_chains``.
    """
    samples = result.posterior
    if samples is None:
        raise ValueError("an MLE result has no chains to write")
    num_results, num_chains, _ = samples.samples.shape
    # Chain-major order: all draws of chain 0, then chain 1, ...
    by_chain = samples.samples.transpose(1, 0, 2).reshape(num_results * num_chains, -1)
    branches = {name: by_chain[:, index] for index, name in enumerate(result.names)}
    branches["log_posterior"] = samples.log_posterior.T.reshape(-1)
    branches["divergent"] = samples.divergent.T.reshape(-1)
    branches["chain"] = np.repeat(np.arange(num_chains, dtype=np.int32), num_results)
    branches["draw"] = np.tile(np.arange(num_results, dtype=np.int32), num_chains)
    metadata = FileMetadata(
        kind="posterior_chains",
        spec=spec.to_dict(),
        seed=samples.config.seed,
        details={"sampler": asdict(samples.config), "model": model_path, "sources": list(result.observed.sources)},
    )
    with atomic_output(path, overwrite) as temporary, create_root(temporary) as file:
        write_metadata(file, metadata)
        tree = file.mktree(
            CHAINS_TREE, {name: values.dtype for name, values in branches.items()}, title="posterior draws of neuromct-tf fit"
        )
        tree.extend(branches)
    return Path(path)


def _format(value: float, digits: int = 4) -> str:
    return "nan" if not math.isfinite(value) else f"{value:.{digits}g}"


def summary_table(result: FitResult) -> Table:
    """Return the table of estimates: mean, median, 68 % interval, MAP, MLE with its error and (when given) the truth.

    The caption gives the units; the table fits 80 columns.
    """
    title = "posterior" if result.method == "mcmc" else "maximum likelihood (Gaussian intervals from the Hessian)"
    units = ", ".join(f"{s.name} in {s.unit}" for s in result.summaries if s.unit and s.unit != "dimensionless")
    table = Table(title=title, caption=units or None, box=box.SIMPLE_HEAD)
    columns = ["parameter", "mean", "median", "68 % interval", "MAP", "MLE ± error"]
    if result.truth is not None:
        columns.append("truth")
    for column in columns:
        table.add_column(column, justify="right")
    truth = dict(zip(("kB", "fC", "LY"), result.truth)) if result.truth is not None else {}
    for summary in result.summaries:
        low, high = summary.interval68
        row = [
            summary.name, _format(summary.mean, 5), _format(summary.median, 5),
            f"[{_format(low)}, {_format(high)}]", _format(summary.map, 5),
            f"{_format(summary.mle, 5)} ± {_format(summary.mle_error, 2)}",
        ]
        if result.truth is not None:
            row.append(_format(truth[summary.name], 5) if summary.name in truth else "")
        table.add_row(*row)
    return table


def correlation_table(result: FitResult) -> Table:
    """Return the correlation matrix as a table; the columns of the normalisations are headed by the source name."""
    table = Table(title="correlation", box=box.SIMPLE_HEAD)
    table.add_column("")
    for name in result.names:
        table.add_column(name.removeprefix("norm_"), justify="right")
    for name, row in zip(result.names, result.correlation):
        table.add_row(name, *(f"{value:+.2f}" if math.isfinite(value) else "nan" for value in row))
    return table


def sources_table(result: FitResult) -> Table:
    """Return the per-source counts: entries in the binning, below it and above it (not fitted)."""
    table = Table(title="sources", box=box.SIMPLE_HEAD)
    for column in ("source", "in range (fitted)", "below range", "above range", "norm (MAP)"):
        table.add_column(column, justify="right")
    observed = result.observed
    for index, name in enumerate(observed.sources):
        table.add_row(
            name, str(int(observed.num_in_range[index])), str(int(observed.num_underflow[index])),
            str(int(observed.num_overflow[index])), _format(float(result.best_point[3 + index]), 5),
        )
    return table


def diagnostics_lines(result: FitResult) -> list[str]:
    """Return one-line summaries of the sampler diagnostics and timings."""
    lines = []
    if result.posterior is not None:
        diagnostics = result.posterior.diagnostics
        config = result.posterior.config
        worst_r_hat = float(np.max(diagnostics.r_hat))
        least_ess = float(np.min(diagnostics.ess))
        lines.append(
            f"{config.sampler.upper()}: {config.num_chains} chains x {config.num_results} draws; "
            f"max split R-hat {worst_r_hat:.4f}, min ESS {least_ess:.0f}, acceptance {diagnostics.acceptance_rate:.2f}, "
            f"{diagnostics.num_divergences} divergences, step size {diagnostics.step_size:.3g}, "
            f"{diagnostics.mean_leapfrog_steps:.1f} leapfrog steps per draw"
        )
    mle = result.mle
    lines.append(
        f"MLE: -log L {mle.negative_log_likelihood:.3f}, EDM {mle.edm:.2g}, best of {mle.num_starts} starts, "
        f"{mle.num_evaluations} evaluations"
    )
    timings = result.timings
    lines.append(f"fit time {timings['total']:.1f} s (MLE {timings['mle']:.1f} s, sampling {timings['sampling']:.1f} s)")
    return lines
