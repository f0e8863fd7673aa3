"""``neuromct-tf evaluate``: score a regressor and the interpolation baseline against test spectra."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from neuromct_tf.cli.common import STDOUT, SpecOption, read_spec
from neuromct_tf.errors import InvalidInputError


def evaluate(
    model_path: Optional[Path] = typer.Argument(
        None, metavar="MODEL", help="Regressor .keras file; the bundled default model when omitted."
    ),
    test_files: list[Path] = typer.Option(
        ..., "--test", help="MC grid file of test spectra (e.g. the 'reference' or 'testing1' grid); repeat for several."
    ),
    training_files: list[Path] = typer.Option(
        ..., "--training", help="MC grid file of the training grid, for the interpolation baseline; repeat for shards."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory for evaluation.json and evaluation.png."),
    training_grid: str = typer.Option("training", "--training-grid", help="Spec grid that the training files hold."),
    min_expected: float = typer.Option(
        5.0, "--min-expected", min=0.0, help="Bins with fewer expected test counts are left out of chi2/ndf."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    spec_file: Optional[Path] = SpecOption,
) -> None:
    """Compare a regressor and the multilinear interpolation baseline with test spectra.

    For each surrogate, test point and source it computes the Wasserstein-1,
    Cramér–von Mises and Kolmogorov–Smirnov distances between the CDFs and
    the chi2/ndf of the test counts, then prints the medians per source and
    writes OUT/evaluation.json and OUT/evaluation.png.
    """
    from neuromct_tf.cli.regressor import _histograms
    from neuromct_tf.data.histograms import build_grid_histograms, cache_directory_for
    from neuromct_tf.io.atomic import check_output_path
    from neuromct_tf.models.bundled import resolve_model_path
    from neuromct_tf.models.interpolation import GridInterpolator
    from neuromct_tf.models.regressor import load_regressor, predict_spectra
    from neuromct_tf.plotting.evaluation import plot_evaluation
    from neuromct_tf.specs import ProductGrid
    from neuromct_tf.validation.evaluate import evaluate_surrogates

    spec = read_spec(spec_file)
    grid = spec.grid(training_grid)
    if not isinstance(grid, ProductGrid):
        raise InvalidInputError(f"grid {training_grid!r} is not a product grid; the baseline interpolates on one")
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"output {out} is a file; give a directory")
    out.mkdir(parents=True, exist_ok=True)
    for name in ("evaluation.json", "evaluation.png"):
        check_output_path(out / name, overwrite)

    model, _ = load_regressor(resolve_model_path(model_path), spec)
    cache = cache_directory_for(out / "evaluation.json")
    test = _histograms(build_grid_histograms, test_files, spec, cache, "histogram test files")
    training = _histograms(build_grid_histograms, training_files, spec, cache, "histogram training files")
    baseline = GridInterpolator.from_histograms(training, grid)
    result = evaluate_surrogates(
        {"regressor": lambda points, ids: predict_spectra(model, points, ids), "interpolation": baseline.predict},
        test, spec, min_expected=min_expected,
    )
    result.to_json(out / "evaluation.json", overwrite=overwrite)
    plot_evaluation(result, spec, out / "evaluation.png", overwrite=overwrite)
    _print_summary(result)
    STDOUT.print(f"wrote {out / 'evaluation.json'} and {out / 'evaluation.png'} ({test.num_points} test points)")


def _print_summary(result) -> None:
    summary = result.summary()
    table = Table(title="median over test points")
    for column in ("source", "surrogate", "W1 [kNPE]", "CvM", "KS", "chi2/ndf"):
        table.add_column(column, justify="right")
    for source in result.sources:
        for surrogate in result.surrogates:
            values = summary[surrogate][source]
            table.add_row(
                source, surrogate, f"{values['wasserstein']:.4g}", f"{values['cramer_von_mises']:.3g}",
                f"{values['kolmogorov_smirnov']:.3g}", f"{values['chi2_per_ndf']:.3g}",
            )
    STDOUT.print(table)
