"""``neuromct-tf validate``: bias, pulls, coverage and the Cramér–Rao bound of the fit on pseudo-datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from neuromct_tf.cli.common import STDOUT, SpecOption, parse_numbers, parse_point, progress_bar, read_spec
from neuromct_tf.errors import InvalidInputError

app = typer.Typer(
    name="validate",
    help="Fit many pseudo-datasets with known truth and report bias, pulls, coverage and the Cramér–Rao bound.",
    no_args_is_help=True,
)

OutOption = typer.Option(
    ..., "--out", "-o",
    help="Output directory (created if missing) for the ROOT, JSON and PNG outputs; finished chunks are kept in its "
    "chunks/ folder, so a rerun with the same settings resumes.",
)
ModelOption = typer.Option(None, "--model", help="Regressor .keras file; the bundled default model when omitted.")
PseudoDataOption = typer.Option(
    "simulation", "--pseudo-data",
    help="simulation: decays of the reference simulation; surrogate: Poisson counts from the regressor itself "
    "(an exact model, which isolates the statistics of the fit).",
)
StartsOption = typer.Option(1, "--starts", help="L-BFGS starts per dataset; unconverged datasets get up to 3 rounds of new starts.")
ChunkOption = typer.Option(100, "--chunk-size", help="Datasets fitted in one batch and stored in one chunk file.")
JobsOption = typer.Option(1, "--jobs", "-j", help="Worker processes of the reference simulation.")
SeedOption = typer.Option(0, "--seed", help="Seed of the pseudo-data, the MLE starts and the point selection; the same seed gives the same output.")
NormRangeOption = typer.Option("0.8,1.2", "--norm-range", help="Range low,high of each source's normalisation.")
MethodOption = typer.Option(
    "mle", "--method",
    help="mle: estimates with Hessian errors; hmc: posterior means and standard deviations from HMC, "
    "all chains of all datasets of a chunk in one batch, started at the MLEs.",
)
ChainsOption = typer.Option(4, "--chains", help="HMC chains per dataset (with --method hmc).")
SamplesOption = typer.Option(50, "--samples", help="HMC draws kept per chain (with --method hmc).")
OverwriteOption = typer.Option(
    False, "--overwrite", help="Replace existing outputs in --out, and chunks made with other settings."
)


def _parse_exposures(text: Optional[str]) -> Optional[list[int]]:
    if text is None:
        return None
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values:
        raise InvalidInputError(f"invalid --exposures {text!r}: give decays per source separated by commas, e.g. 1000,10000")
    return values


def _settings(num_datasets, pseudo_data, seed, starts, chunk_size, norm_range, jobs, method="mle", chains=4, samples=50):
    from neuromct_tf.validation.campaigns import StudySettings

    return StudySettings(
        num_datasets=num_datasets, data_source=pseudo_data, seed=seed, num_starts=starts, chunk_size=chunk_size,
        norm_range=parse_numbers(norm_range, "--norm-range", 2, "0.8,1.2"), num_jobs=jobs, method=method, num_chains=chains, num_samples=samples,
    )


@app.command("exposure")
def exposure(
    out: Path = OutOption,
    model_path: Optional[Path] = ModelOption,
    datasets: Optional[int] = typer.Option(
        None, "--datasets", "-n", help="Pseudo-datasets per exposure; the spec's testing2 num_datasets (1000) when omitted."
    ),
    exposures: Optional[str] = typer.Option(
        None, "--exposures", help="Decays per source, comma-separated, each one of the spec's testing2 exposures; all when omitted."
    ),
    point: Optional[str] = typer.Option(None, "--point", help="True point kB,fC,LY; the spec's nominal point when omitted."),
    pseudo_data: str = PseudoDataOption,
    fisher_events: int = typer.Option(
        200_000, "--fisher-events",
        help="Decays per source and replica of the simulation's finite-difference Fisher information "
        "(2 x 5 x this many in all); 0 skips the cross-check of the Cramér–Rao bound.",
    ),
    method: str = MethodOption,
    chains: int = ChainsOption,
    samples: int = SamplesOption,
    starts: int = StartsOption,
    chunk_size: int = ChunkOption,
    jobs: int = JobsOption,
    seed: int = SeedOption,
    norm_range: str = NormRangeOption,
    overwrite: bool = OverwriteOption,
    spec_file: Optional[Path] = SpecOption,
) -> None:
    """Fit pseudo-datasets at one point for each exposure and report bias, pulls, coverage and sigma / CRB.

    Writes exposure_fits.root (TTrees fits and statistics), exposure_summary.json
    and exposure_study.png to --out, and prints the tables.
    """
    from neuromct_tf.plotting.validation import plot_exposure_study
    from neuromct_tf.validation.campaigns import exposure_grid, exposure_output_paths, run_exposure_study, select_exposures
    from neuromct_tf.validation.reports import (
        bounds_table, exposure_summary, exposure_table, pulls_table, write_exposure_root, write_json,
    )

    spec = read_spec(spec_file)
    num_datasets = exposure_grid(spec).num_datasets if datasets is None else datasets
    settings = _settings(num_datasets, pseudo_data, seed, starts, chunk_size, norm_range, jobs, method, chains, samples)
    selected = select_exposures(spec, _parse_exposures(exposures))
    truth = None if point is None else parse_point(point)
    with progress_bar("fitting datasets", len(selected) * num_datasets, "datasets") as advance:
        study = run_exposure_study(
            spec, out, settings, selected, truth, fisher_events, model_path, overwrite, progress_fn=advance
        )

    paths = exposure_output_paths(out)
    write_exposure_root(study, paths["fits"], overwrite)
    write_json(exposure_summary(study), paths["summary"], overwrite)
    plot_exposure_study(study, paths["figure"], overwrite)
    STDOUT.print(exposure_table(study))
    STDOUT.print(pulls_table(study))
    STDOUT.print(bounds_table(study))
    for exposure_value in study.exposures:
        fits = study.fits[exposure_value]
        STDOUT.print(
            f"exposure {exposure_value}: {int(fits.converged.sum())}/{fits.datasets.size} MLEs converged, "
            f"{int(fits.at_edge.sum())} at a box edge; simulation {fits.simulation_seconds:.1f} s, fits {fits.fit_seconds:.1f} s"
        )
    for written in paths.values():
        STDOUT.print(f"wrote {written}")
    STDOUT.print(f"model {study.model_path}; job time {study.wall_seconds:.1f} s")


@app.command("grid")
def grid(
    out: Path = OutOption,
    model_path: Optional[Path] = ModelOption,
    grid_name: str = typer.Option("testing1", "--grid", help="Product grid of the spec whose points are the true points."),
    max_points: Optional[int] = typer.Option(
        None, "--points", help="Study this many grid points, drawn at random with --seed; all points when omitted."
    ),
    datasets: int = typer.Option(20, "--datasets", "-n", help="Pseudo-datasets per point."),
    exposure_value: int = typer.Option(10_000, "--exposure", help="Decays per source of every dataset."),
    pseudo_data: str = PseudoDataOption,
    method: str = MethodOption,
    chains: int = ChainsOption,
    samples: int = SamplesOption,
    starts: int = StartsOption,
    chunk_size: int = ChunkOption,
    jobs: int = JobsOption,
    seed: int = SeedOption,
    norm_range: str = NormRangeOption,
    overwrite: bool = OverwriteOption,
    spec_file: Optional[Path] = SpecOption,
) -> None:
    """Fit pseudo-datasets at the points of a grid and map the median bias in units of sigma.

    Writes grid_fits.root (TTrees fits and statistics), grid_summary.json and
    grid_bias.png to --out, and prints an overview.
    """
    from neuromct_tf.plotting.validation import plot_grid_bias
    from neuromct_tf.validation.campaigns import grid_output_paths, run_grid_study, select_grid_points
    from neuromct_tf.validation.reports import grid_summary, grid_table, write_grid_root, write_json

    spec = read_spec(spec_file)
    settings = _settings(datasets, pseudo_data, seed, starts, chunk_size, norm_range, jobs, method, chains, samples)
    num_points = len(select_grid_points(spec, grid_name, max_points, seed))
    with progress_bar("fitting datasets", num_points * datasets, "datasets") as advance:
        study = run_grid_study(
            spec, out, settings, grid_name, exposure_value, max_points, model_path, overwrite, progress_fn=advance
        )

    paths = grid_output_paths(out)
    write_grid_root(study, paths["fits"], overwrite)
    write_json(grid_summary(study), paths["summary"], overwrite)
    plot_grid_bias(study, paths["figure"], overwrite)
    STDOUT.print(grid_table(study))
    num_fits = sum(fits.datasets.size for fits in study.fits)
    num_converged = sum(int(fits.converged.sum()) for fits in study.fits)
    STDOUT.print(f"{num_converged}/{num_fits} MLEs converged")
    for written in paths.values():
        STDOUT.print(f"wrote {written}")
    STDOUT.print(f"model {study.model_path}; job time {study.wall_seconds:.1f} s")
