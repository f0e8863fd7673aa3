"""Validation studies of the fit: many pseudo-datasets per true point, fitted in batches.

What to use when:

- :func:`run_exposure_study`: datasets at one point (the nominal one by
  default) for each exposure of the spec's ``testing2`` grid. Gives bias,
  resolution, pulls and coverage against the exposure, and the Cramér–Rao
  bound with its cross-check against the reference simulation.
- :func:`run_grid_study`: datasets at every point (or a random subset) of a
  grid such as ``testing1``. Gives the bias in units of sigma over the
  parameter box.

Both split the datasets into chunks. A chunk is simulated, fitted with
:func:`~neuromct_tf.inference.batched.fit_mle_batched` (and, with
``method="hmc"``, sampled by
:func:`~neuromct_tf.inference.batched_sampling.sample_posteriors_batched`) and written to
``chunks/`` in the output directory, atomically, together with the settings
that made it. A later run with the same settings reads finished chunks
instead of fitting them again, so an interrupted study resumes where it
stopped. Dataset i of a chunk always has the same random streams, so the
results do not depend on the chunk size or on the interruption.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from neuromct_tf._version import __version__
from neuromct_tf.errors import InvalidInputError, OutputError
from neuromct_tf.inference.batched import BatchedLikelihood, fit_mle_batched
from neuromct_tf.inference.batched_sampling import BatchedSamplerConfig, sample_posteriors_batched
from neuromct_tf.inference.model import DEFAULT_NORM_RANGE
from neuromct_tf.io.atomic import atomic_output, check_output_path
from neuromct_tf.models.bundled import resolve_model_path
from neuromct_tf.models.regressor import load_regressor
from neuromct_tf.specs import DataSpec, ExposureGrid, ProductGrid
from neuromct_tf.validation.fisher import (
    SimulatedSpectra,
    default_steps,
    simulate_fisher_spectra,
    simulation_fisher,
    surrogate_fisher,
    surrogate_fisher_differences,
)
from neuromct_tf.validation.pseudodata import (
    DATA_SOURCES,
    SimulationPool,
    draw_surrogate_datasets,
    stream_seed,
    submit_datasets,
)
from neuromct_tf.validation.statistics import ParameterStatistics, parameter_statistics

logger = logging.getLogger(__name__)

#: Directory of the chunk files inside a study's output directory.
CHUNK_DIR = "chunks"

#: Fit methods of the studies.
FIT_METHODS = ("mle", "hmc")

#: Split R-hat above which the HMC chains of a dataset are reported as not converged. With the
#: default 4 chains of 50 draws, R-hat scatters by a few percent around 1 even for converged chains.
MAX_R_HAT = 1.1

ProgressFn = Callable[[int], None]


@dataclass(frozen=True)
class StudySettings:
    """Settings shared by both studies.

    Attributes
    ----------
    num_datasets : int
        Pseudo-datasets per exposure (exposure study) or per point (grid study).
    data_source : str
        ``simulation`` (reference simulation) or ``surrogate`` (Poisson counts from the surrogate itself).
    seed : int
        Seed of the pseudo-data, the MLE starts and the Fisher spectra.
    num_starts : int
        L-BFGS starts per dataset.
    chunk_size : int
        Datasets fitted in one batch and stored in one chunk file.
    norm_range : (float, float)
        Range of each normalisation n_s.
    num_jobs : int
        Worker processes of the reference simulation.
    method : str
        ``mle`` (estimates and Hessian errors) or ``hmc`` (posterior means
        and standard deviations from batched HMC started at the MLEs).
    num_chains, num_samples : int
        HMC chains per dataset and draws kept per chain (``method="hmc"`` only).
    """

    num_datasets: int = 1000
    data_source: str = "simulation"
    seed: int = 0
    num_starts: int = 1
    chunk_size: int = 100
    norm_range: tuple[float, float] = DEFAULT_NORM_RANGE
    num_jobs: int = 1
    method: str = "mle"
    num_chains: int = 4
    num_samples: int = 50

    def __post_init__(self):
        if self.method not in FIT_METHODS:
            raise InvalidInputError(f"unknown fit method {self.method!r}; choose one of {', '.join(FIT_METHODS)}")
        if self.method == "hmc":
            BatchedSamplerConfig(num_chains=self.num_chains, num_results=self.num_samples)
        if self.num_datasets < 1:
            raise InvalidInputError(f"invalid number of datasets {self.num_datasets}; give at least 1")
        if self.data_source not in DATA_SOURCES:
            raise InvalidInputError(f"unknown pseudo-data {self.data_source!r}; choose one of {', '.join(DATA_SOURCES)}")
        if not 0 <= self.seed < 2**63:
            raise InvalidInputError(f"invalid seed {self.seed}; give an integer from 0 to 2**63 - 1")
        if self.num_starts < 1:
            raise InvalidInputError(f"invalid number of MLE starts {self.num_starts}; give at least 1")
        if self.chunk_size < 1:
            raise InvalidInputError(f"invalid chunk size {self.chunk_size}; give at least 1")
        if self.num_jobs < 1:
            raise InvalidInputError(f"invalid number of jobs {self.num_jobs}; give at least 1")


@dataclass(frozen=True)
class DatasetFits:
    """MLE fits of the datasets of one exposure or one grid point.

    Attributes
    ----------
    datasets : numpy.ndarray of int64, shape (D,)
        Dataset indices.
    points, errors : numpy.ndarray of float64, shape (D, 3 + S)
        MLEs and Hessian errors (NaN without a positive-definite Hessian).
    negative_log_likelihood, edm : numpy.ndarray of float64, shape (D,)
        -log L and the estimated distance to the minimum.
    converged, positive_definite, at_edge : numpy.ndarray of bool, shape (D,)
        MLE flags, as :class:`~neuromct_tf.inference.batched.BatchedMLEResult`.
    num_in_range, num_underflow, num_overflow : numpy.ndarray of int64, shape (D, S)
        Entries per source inside, below and above the binning.
    simulation_seconds, fit_seconds : float
        Wall time spent waiting for the pseudo-data and fitting them, summed over chunks and runs.
        With more than one job the workers simulate a chunk while the previous one is fitted, so
        the wait is shorter than the simulation.
    """

    datasets: np.ndarray
    points: np.ndarray
    errors: np.ndarray
    negative_log_likelihood: np.ndarray
    edm: np.ndarray
    converged: np.ndarray
    positive_definite: np.ndarray
    at_edge: np.ndarray
    num_in_range: np.ndarray
    num_underflow: np.ndarray
    num_overflow: np.ndarray
    simulation_seconds: float
    fit_seconds: float

    @property
    def valid(self) -> np.ndarray:
        """Fits that enter the statistics, bool of shape (D,): positive-definite Hessian."""
        return self.positive_definite

    @classmethod
    def concatenate(cls, parts: Sequence[DatasetFits]) -> DatasetFits:
        """Join the fits of consecutive chunks."""
        arrays = {
            name: np.concatenate([getattr(part, name) for part in parts])
            for name in _ARRAY_FIELDS
        }
        return cls(
            **arrays,
            simulation_seconds=float(sum(part.simulation_seconds for part in parts)),
            fit_seconds=float(sum(part.fit_seconds for part in parts)),
        )


_ARRAY_FIELDS = (
    "datasets", "points", "errors", "negative_log_likelihood", "edm", "converged", "positive_definite", "at_edge",
    "num_in_range", "num_underflow", "num_overflow",
)


@dataclass(frozen=True)
class BoundCheck:
    """Cramér–Rao bounds of one exposure, from the surrogate and from the reference simulation.

    Attributes
    ----------
    exposure : int
        Decays per source.
    expected_counts : numpy.ndarray of float64, shape (S,)
        Mean in-range entries per source over the datasets, the nu_s of the bound.
    crb : numpy.ndarray of float64, shape (3,)
        Bound from the surrogate by autodiff, all bins.
    crb_surrogate_differences : numpy.ndarray of float64, shape (3,)
        Bound from finite differences of the surrogate, on the bins and steps of the simulation check.
    crb_simulation : numpy.ndarray of float64, shape (3,)
        Bound from finite differences of the reference simulation (NaN when not run).
    """

    exposure: int
    expected_counts: np.ndarray
    crb: np.ndarray
    crb_surrogate_differences: np.ndarray
    crb_simulation: np.ndarray


@dataclass(frozen=True)
class ExposureStudy:
    """Result of :func:`run_exposure_study`.

    Attributes
    ----------
    spec : DataSpec
        The spec in use.
    settings : StudySettings
        Settings of the study.
    truth : numpy.ndarray of float64, shape (3,)
        True kB, fC, LY.
    exposures : tuple of int
        Decays per source of each exposure.
    names : tuple of str
        State names, ``kB``, ``fC``, ``LY`` then ``norm_SOURCE``.
    fits : dict of int to DatasetFits
        Fits per exposure.
    statistics : dict of int to tuple of ParameterStatistics
        Statistics per exposure, of kB, fC and LY.
    bounds : dict of int to BoundCheck
        Cramér–Rao bounds per exposure.
    fisher_steps : numpy.ndarray of float64, shape (3,)
        Finite-difference steps of kB, fC and LY.
    fisher_events : int
        Decays per source and replica of the simulation check (0 when skipped).
    model_path : pathlib.Path
        The regressor.
    wall_seconds : float
        Wall time of this run (finished chunks that were read count zero).
    """

    spec: DataSpec
    settings: StudySettings
    truth: np.ndarray
    exposures: tuple[int, ...]
    names: tuple[str, ...]
    fits: dict
    statistics: dict
    bounds: dict
    fisher_steps: np.ndarray
    fisher_events: int
    model_path: Path
    wall_seconds: float


@dataclass(frozen=True)
class GridStudy:
    """Result of :func:`run_grid_study`.

    Attributes
    ----------
    spec : DataSpec
        The spec in use.
    settings : StudySettings
        Settings of the study.
    grid_name : str
        The grid.
    exposure : int
        Decays per source of every dataset.
    point_indices : numpy.ndarray of int64, shape (K,)
        Grid indices of the points studied.
    points : numpy.ndarray of float64, shape (K, 3)
        The true points.
    names : tuple of str
        State names.
    fits : list of DatasetFits
        Fits per point.
    statistics : list of tuple of ParameterStatistics
        Statistics per point, of kB, fC and LY.
    crb : numpy.ndarray of float64, shape (K, 3)
        Cramér–Rao bounds of the surrogate at each point.
    model_path : pathlib.Path
        The regressor.
    wall_seconds : float
        Wall time of this run.
    """

    spec: DataSpec
    settings: StudySettings
    grid_name: str
    exposure: int
    point_indices: np.ndarray
    points: np.ndarray
    names: tuple[str, ...]
    fits: list
    statistics: list
    crb: np.ndarray
    model_path: Path
    wall_seconds: float


@dataclass
class _Context:
    """State shared by the chunks of one study: likelihood, worker pool, settings and the chunk directory."""

    spec: DataSpec
    settings: StudySettings
    likelihood: BatchedLikelihood
    pool: SimulationPool
    chunk_dir: Path
    base_settings: dict
    overwrite: bool
    progress_fn: ProgressFn | None = None
    reused: int = field(default=0)


def file_digest(path: Path) -> str:
    """Return the SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def exposure_grid(spec: DataSpec, grid_name: str = "testing2") -> ExposureGrid:
    """Return the spec's exposure grid.

    Raises
    ------
    InvalidInputError
        If the grid is missing or is not an exposure grid.
    """
    grid = spec.grid(grid_name)
    if not isinstance(grid, ExposureGrid):
        raise InvalidInputError(f"grid {grid_name!r} of the spec has no exposures; give an exposure grid such as testing2")
    return grid


def select_exposures(spec: DataSpec, exposures: Sequence[int] | None) -> tuple[int, ...]:
    """Return the requested exposures, each checked against the spec's ``testing2`` grid; all of them by default.

    Raises
    ------
    InvalidInputError
        For an exposure that the spec does not list.
    """
    known = exposure_grid(spec).exposures
    if exposures is None:
        return tuple(int(e) for e in known)
    unknown = [int(e) for e in exposures if int(e) not in known]
    if unknown:
        raise InvalidInputError(
            f"unknown exposure {', '.join(map(str, unknown))}; the spec's testing2 grid has {', '.join(map(str, known))} "
            "decays per source"
        )
    if not exposures:
        raise InvalidInputError("no exposure given; give at least one of the spec's testing2 exposures")
    return tuple(sorted({int(e) for e in exposures}))


def exposure_output_paths(out_dir: str | Path) -> dict[str, Path]:
    """Return the outputs of the exposure study by role: ``fits`` (ROOT), ``summary`` (JSON), ``figure`` (PNG)."""
    out_dir = Path(out_dir)
    return {
        "fits": out_dir / "exposure_fits.root",
        "summary": out_dir / "exposure_summary.json",
        "figure": out_dir / "exposure_study.png",
    }


def grid_output_paths(out_dir: str | Path) -> dict[str, Path]:
    """Return the outputs of the grid study by role: ``fits`` (ROOT), ``summary`` (JSON), ``figure`` (PNG)."""
    out_dir = Path(out_dir)
    return {"fits": out_dir / "grid_fits.root", "summary": out_dir / "grid_summary.json", "figure": out_dir / "grid_bias.png"}


def prepare_study_dir(out_dir: str | Path, paths: dict[str, Path], overwrite: bool) -> Path:
    """Create the output and chunk directories and check the final outputs before any work.

    Raises
    ------
    OutputError
        If a final output exists without ``overwrite``, or the directory cannot be created or written.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"output {out_dir} is a file; give a directory for the study")
    try:
        (out_dir / CHUNK_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create output directory {out_dir}: {error.strerror}; choose another --out") from None
    for path in paths.values():
        check_output_path(path, overwrite)
    return out_dir / CHUNK_DIR


def _open_context(spec, settings, model_path, out_dir, paths, overwrite, progress_fn, kind) -> _Context:
    path = resolve_model_path(model_path)
    model, _ = load_regressor(path, spec)
    chunk_dir = prepare_study_dir(out_dir, paths, overwrite)
    base = {
        "kind": kind,
        "version": __version__,
        "spec": spec.to_dict(),
        "model_sha256": file_digest(path),
        "data_source": settings.data_source,
        "seed": settings.seed,
        "num_starts": settings.num_starts,
        "norm_range": [float(v) for v in settings.norm_range],
    }
    if settings.method != "mle":
        base.update(method=settings.method, num_chains=settings.num_chains, num_samples=settings.num_samples)
    likelihood = BatchedLikelihood(model, spec, spec.sources, settings.norm_range)
    return _Context(spec, settings, likelihood, SimulationPool(settings.num_jobs), chunk_dir, base, overwrite, progress_fn)


def _chunks(num_datasets: int, chunk_size: int) -> list[range]:
    return [range(start, min(start + chunk_size, num_datasets)) for start in range(0, num_datasets, chunk_size)]


def _start_seeds(seed: int, stream: str, datasets: range) -> np.ndarray:
    return np.array(
        [int(stream_seed(seed, f"starts_{stream}", index).generate_state(1, np.uint64)[0]) for index in datasets],
        dtype=np.uint64,
    )


def _submit_pseudo_data(context: _Context, point: np.ndarray, num_events: int, stream: str, datasets: range):
    """Start making the pseudo-data of a chunk and return a function that waits for them."""
    settings = context.settings
    if settings.data_source == "simulation":
        return submit_datasets(context.spec, point, num_events, datasets, settings.seed, stream, context.pool)
    probabilities = np.exp(context.likelihood.log_probabilities(point[None]).numpy()[0])
    return lambda: draw_surrogate_datasets(probabilities, num_events, datasets, settings.seed, stream)


def _chunk_key(context: _Context, point: np.ndarray, num_events: int, stream: str, datasets: range) -> str:
    """Return the settings of a chunk as JSON text, stored in its file and compared on resuming."""
    chunk_settings = dict(context.base_settings, point=[float(v) for v in point], events=int(num_events), stream=stream,
                          datasets=[datasets.start, datasets.stop])
    return json.dumps(chunk_settings, sort_keys=True)


def _stored_chunk(context: _Context, path: Path, key: str) -> DatasetFits | None:
    """Return the fits of a finished chunk file with the same settings, or ``None`` when the chunk must be fitted.

    Raises
    ------
    OutputError
        If the file was made with other settings and ``overwrite`` is false.
    """
    if not path.exists():
        return None
    stored = _read_chunk(path, key)
    if stored is None and not context.overwrite:
        raise OutputError(
            f"chunk {path} was made with other settings (model, spec, seed, pseudo-data or MLE starts); "
            "pass --overwrite to fit it again, or choose another --out"
        )
    return stored


def _fit_chunk(context: _Context, pseudo_data, num_events: int, stream: str, datasets: range) -> DatasetFits:
    """Wait for the pseudo-data of one chunk and fit them."""
    start = time.perf_counter()
    data = pseudo_data()
    simulated = time.perf_counter()
    empty = np.argwhere(data.counts.sum(axis=-1) == 0)
    if empty.size:
        dataset, source = empty[0]
        raise InvalidInputError(
            f"dataset {datasets[dataset]} has no {context.spec.sources[source]} entries inside "
            f"{context.spec.binning.describe()} at {num_events} decays per source; give a larger exposure"
        )
    seeds = _start_seeds(context.settings.seed, stream, datasets)
    result = fit_mle_batched(context.likelihood, data.counts, seeds, context.settings.num_starts)
    points, errors = result.points, result.errors
    if context.settings.method == "hmc":
        # The start seeds are uint64; the sampler takes seeds below 2**63.
        points, errors = _sample_chunk(context, data.counts, result, int(seeds[0]) & (2**63 - 1))
    return DatasetFits(
        datasets=np.arange(datasets.start, datasets.stop, dtype=np.int64),
        points=points,
        errors=errors,
        negative_log_likelihood=result.negative_log_likelihood,
        edm=result.edm,
        converged=result.converged,
        positive_definite=result.positive_definite,
        at_edge=result.at_edge,
        num_in_range=data.counts.sum(axis=-1),
        num_underflow=data.num_underflow,
        num_overflow=data.num_overflow,
        simulation_seconds=simulated - start,
        fit_seconds=time.perf_counter() - simulated,
    )


def _sample_chunk(context: _Context, counts: np.ndarray, mle, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the posterior means and standard deviations of one chunk, shape (D, 3 + S) each."""
    settings = context.settings
    posteriors = sample_posteriors_batched(
        context.likelihood, counts, mle,
        BatchedSamplerConfig(num_chains=settings.num_chains, num_results=settings.num_samples, seed=seed),
    )
    unconverged = int(np.sum(np.max(posteriors.r_hat[:, :3], axis=1) > MAX_R_HAT))
    if unconverged:
        logger.warning(
            "%d of %d datasets have a split R-hat above %.2f for kB, fC or LY; raise --samples or --chains",
            unconverged, len(counts), MAX_R_HAT,
        )
    return posteriors.mean, posteriors.std


def _write_chunk(path: Path, fits: DatasetFits, key: str) -> None:
    arrays = {name: getattr(fits, name) for name in _ARRAY_FIELDS}
    with atomic_output(path, overwrite=True) as temporary, open(temporary, "wb") as handle:
        np.savez(
            handle, settings=np.array(key), simulation_seconds=fits.simulation_seconds, fit_seconds=fits.fit_seconds, **arrays
        )


def _read_chunk(path: Path, key: str) -> DatasetFits | None:
    """Return the fits stored in a chunk file, or ``None`` when its settings differ or it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["settings"]) != key:
                return None
            return DatasetFits(
                **{name: stored[name] for name in _ARRAY_FIELDS},
                simulation_seconds=float(stored["simulation_seconds"]),
                fit_seconds=float(stored["fit_seconds"]),
            )
    except (OSError, ValueError, KeyError) as error:
        logger.warning("chunk %s cannot be read (%s); fitting it again", path, error)
        return None


def _fit_datasets(context: _Context, point, num_events: int, stream: str, file_stem: str) -> DatasetFits:
    """Return the fits of all datasets of one exposure or point, chunk by chunk, reading finished chunks."""
    point = np.asarray(point, np.float64)
    chunks = _chunks(context.settings.num_datasets, context.settings.chunk_size)
    paths = [context.chunk_dir / f"{file_stem}_{datasets.start:06d}-{datasets.stop:06d}.npz" for datasets in chunks]
    keys = [_chunk_key(context, point, num_events, stream, datasets) for datasets in chunks]
    parts = [_stored_chunk(context, path, key) for path, key in zip(paths, keys)]
    missing = [index for index, part in enumerate(parts) if part is None]
    context.reused += sum(len(chunks[i]) for i in range(len(chunks)) if parts[i] is not None)

    pending = {}
    for index in missing:
        if index not in pending:
            pending[index] = _submit_pseudo_data(context, point, num_events, stream, chunks[index])
        # The workers simulate the next chunk while this process fits the current one.
        following = [later for later in missing if later > index]
        if following and following[0] not in pending:
            pending[following[0]] = _submit_pseudo_data(context, point, num_events, stream, chunks[following[0]])
        parts[index] = _fit_chunk(context, pending.pop(index), num_events, stream, chunks[index])
        _write_chunk(paths[index], parts[index], keys[index])
        if context.progress_fn is not None:
            context.progress_fn(len(chunks[index]))
    if context.progress_fn is not None:
        context.progress_fn(sum(len(chunks[i]) for i in range(len(chunks)) if i not in missing))
    return DatasetFits.concatenate(parts)


def run_exposure_study(
    spec: DataSpec,
    out_dir: str | Path,
    settings: StudySettings = StudySettings(),
    exposures: Sequence[int] | None = None,
    point: Sequence[float] | None = None,
    fisher_events: int = 200_000,
    model_path: str | Path | None = None,
    overwrite: bool = False,
    progress_fn: ProgressFn | None = None,
) -> ExposureStudy:
    """Fit ``settings.num_datasets`` pseudo-datasets per exposure at one point and compute the statistics and bounds.

    Parameters
    ----------
    spec : DataSpec
        Parameter box, sources, binning and the ``testing2`` exposures.
    out_dir : path
        Output directory; finished chunks are kept in its ``chunks/`` folder.
    settings : StudySettings
        Datasets, pseudo-data, seed, starts, chunk size and jobs.
    exposures : sequence of int, optional
        Decays per source; all exposures of the spec's ``testing2`` grid by default.
    point : sequence of 3 float, optional
        True (kB g/cm2/GeV, fC, LY photons/MeV); the spec's nominal point by default.
    fisher_events : int
        Decays per source and replica of the simulation's finite-difference
        Fisher information (2 x S x this many decays in all); 0 skips the check,
        and so does ``surrogate`` pseudo-data.
    model_path : path, optional
        Regressor ``.keras`` file; the bundled model when ``None``.
    overwrite : bool
        Replace existing outputs and chunks made with other settings.
    progress_fn : callable, optional
        Called with the number of datasets after each chunk.

    Returns
    -------
    ExposureStudy

    Raises
    ------
    InvalidInputError
        For an unknown exposure, a point outside the box, a negative ``fisher_events``
        or a missing model file.
    SpecMismatchError
        If the model was made with another spec.
    OutputError
        If an output exists without ``overwrite``, or a chunk was made with other settings.
    """
    start = time.perf_counter()
    selected = select_exposures(spec, exposures)
    truth = spec.check_point(spec.nominal() if point is None else point)
    if fisher_events < 0:
        raise InvalidInputError(f"invalid number of Fisher events {fisher_events}; give 0 (no check) or a positive number")
    context = _open_context(
        spec, settings, model_path, out_dir, exposure_output_paths(out_dir), overwrite, progress_fn, "exposure"
    )
    try:
        fits = {}
        for exposure in selected:
            logger.info("exposure %d decays per source: %d datasets", exposure, settings.num_datasets)
            fits[exposure] = _fit_datasets(context, truth, exposure, f"validate_exposure_{exposure}", f"exposure_{exposure:08d}")
        spectra = None
        if fisher_events > 0 and settings.data_source == "simulation":
            spectra = _fisher_spectra(context, truth, fisher_events)
    finally:
        context.pool.close()
    if context.reused:
        logger.info("read %d finished datasets from %s", context.reused, context.chunk_dir)

    bounds = {}
    statistics = {}
    for exposure in selected:
        expected = fits[exposure].num_in_range.mean(axis=0).astype(np.float64)
        bounds[exposure] = _bound_check(context.likelihood, truth, exposure, expected, spectra, default_steps(spec))
        part = fits[exposure]
        statistics[exposure] = parameter_statistics(part.points[:, :3], part.errors[:, :3], part.valid, truth, bounds[exposure].crb)
    return ExposureStudy(
        spec=spec,
        settings=settings,
        truth=truth,
        exposures=selected,
        names=context.likelihood.names,
        fits=fits,
        statistics=statistics,
        bounds=bounds,
        fisher_steps=default_steps(spec),
        fisher_events=0 if spectra is None else int(fisher_events),
        model_path=resolve_model_path(model_path),
        wall_seconds=time.perf_counter() - start,
    )


def _fisher_spectra(context: _Context, truth: np.ndarray, num_events: int):
    """Return the simulated spectra of the Fisher check, from its chunk file when it matches the settings."""
    path = context.chunk_dir / "fisher_spectra.npz"
    key = json.dumps(dict(context.base_settings, point=truth.tolist(), fisher_events=int(num_events),
                          steps=default_steps(context.spec).tolist()), sort_keys=True)
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as stored:
                if str(stored["settings"]) == key:
                    return SimulatedSpectra(
                        stored["central"], stored["shifted"], stored["in_range"], stored["steps"], int(stored["num_events"])
                    )
        except (OSError, ValueError, KeyError) as error:
            logger.warning("%s cannot be read (%s); simulating the Fisher spectra again", path, error)
        if not context.overwrite:
            raise OutputError(f"{path} was made with other settings; pass --overwrite to simulate it again, or choose another --out")
    logger.info("simulating %s decays per source in 2 replicas for the Fisher information", f"{num_events:,}")
    spectra = simulate_fisher_spectra(context.spec, truth, num_events, context.settings.seed, context.pool)
    with atomic_output(path, overwrite=True) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, settings=np.array(key), central=spectra.central, shifted=spectra.shifted,
                 in_range=spectra.in_range, steps=spectra.steps, num_events=spectra.num_events)
    return spectra


def _bound_check(likelihood, truth, exposure, expected, spectra, steps) -> BoundCheck:
    crb = surrogate_fisher(likelihood, truth[None], expected[None]).crb[0]
    nan = np.full(3, np.nan)
    if spectra is None:
        return BoundCheck(exposure, expected, crb, nan, nan)
    mask = spectra.mask()
    differences = surrogate_fisher_differences(likelihood, truth, expected, steps, mask).crb
    simulated = simulation_fisher(likelihood.names, spectra, expected).crb
    return BoundCheck(exposure, expected, crb, differences, simulated)


def select_grid_points(spec: DataSpec, grid_name: str, max_points: int | None, seed: int) -> np.ndarray:
    """Return the sorted indices of the grid points to study: all, or ``max_points`` drawn without replacement.

    Raises
    ------
    InvalidInputError
        For a grid that is not a product grid, or ``max_points < 1``.
    """
    grid = spec.grid(grid_name)
    if not isinstance(grid, ProductGrid):
        raise InvalidInputError(f"grid {grid_name!r} is not a product grid of kB, fC and LY; give one such as testing1")
    if max_points is not None and max_points < 1:
        raise InvalidInputError(f"invalid number of grid points {max_points}; give at least 1")
    if max_points is None or max_points >= grid.num_points:
        return np.arange(grid.num_points, dtype=np.int64)
    rng = np.random.default_rng(stream_seed(seed, f"grid_points_{grid_name}"))
    return np.sort(rng.choice(grid.num_points, size=max_points, replace=False)).astype(np.int64)


def run_grid_study(
    spec: DataSpec,
    out_dir: str | Path,
    settings: StudySettings = StudySettings(num_datasets=20),
    grid_name: str = "testing1",
    exposure: int = 10_000,
    max_points: int | None = None,
    model_path: str | Path | None = None,
    overwrite: bool = False,
    progress_fn: ProgressFn | None = None,
) -> GridStudy:
    """Fit ``settings.num_datasets`` pseudo-datasets at each selected grid point.

    Parameters
    ----------
    spec : DataSpec
        Parameter box, sources, binning and the grid.
    out_dir : path
        Output directory; finished chunks are kept in its ``chunks/`` folder.
    settings : StudySettings
        Datasets per point, pseudo-data, seed, starts, chunk size and jobs.
    grid_name : str
        A product grid of the spec.
    exposure : int
        Decays per source of every dataset.
    max_points : int, optional
        Study this many points, drawn with ``settings.seed``; all points when ``None``.
    model_path : path, optional
        Regressor ``.keras`` file; the bundled model when ``None``.
    overwrite : bool
        Replace existing outputs and chunks made with other settings.
    progress_fn : callable, optional
        Called with the number of datasets after each chunk.

    Returns
    -------
    GridStudy

    Raises
    ------
    InvalidInputError
        For an unknown grid, a non-positive exposure or ``max_points``, or a missing model file.
    SpecMismatchError
        If the model was made with another spec.
    OutputError
        If an output exists without ``overwrite``, or a chunk was made with other settings.
    """
    start = time.perf_counter()
    if exposure < 1:
        raise InvalidInputError(f"invalid exposure {exposure}; give a positive number of decays per source")
    indices = select_grid_points(spec, grid_name, max_points, settings.seed)
    points = spec.grid(grid_name).points()[indices]
    context = _open_context(spec, settings, model_path, out_dir, grid_output_paths(out_dir), overwrite, progress_fn, "grid")
    grid_key = zlib.crc32(grid_name.encode())
    try:
        fits = [
            _fit_datasets(
                context, point, exposure, f"validate_grid_{grid_key}_{index}", f"grid_{grid_name}_{index:06d}_{exposure:08d}"
            )
            for index, point in zip(indices, points)
        ]
    finally:
        context.pool.close()
    if context.reused:
        logger.info("read %d finished datasets from %s", context.reused, context.chunk_dir)

    expected = np.stack([part.num_in_range.mean(axis=0) for part in fits]).astype(np.float64)
    crb = surrogate_fisher(context.likelihood, points, expected).crb
    statistics = [
        parameter_statistics(part.points[:, :3], part.errors[:, :3], part.valid, point, bound)
        for part, point, bound in zip(fits, points, crb)
    ]
    return GridStudy(
        spec=spec,
        settings=settings,
        grid_name=grid_name,
        exposure=int(exposure),
        point_indices=indices,
        points=points,
        names=context.likelihood.names,
        fits=fits,
        statistics=statistics,
        crb=crb,
        model_path=resolve_model_path(model_path),
        wall_seconds=time.perf_counter() - start,
    )


def statistics_rows(statistics: Sequence[ParameterStatistics]) -> dict:
    """Return the statistics of kB, fC and LY as a dict of name to field dict (for JSON)."""
    return {entry.name: {k: v for k, v in asdict(entry).items() if k != "name"} for entry in statistics}
