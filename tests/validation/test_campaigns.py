"""Validation studies on the tiny spec: table shapes, resuming, exact-model pulls and the Fisher information."""

from __future__ import annotations

import json

import numpy as np
import pytest
import uproot
from scipy import stats

from neuromct_tf.errors import InvalidInputError, OutputError
from neuromct_tf.inference.batched import BatchedLikelihood
from neuromct_tf.io.calib import histogram_counts, make_histogram
from neuromct_tf.models.regressor import load_regressor
from neuromct_tf.sim.runner import simulate_chunked
from neuromct_tf.specs import load_spec
from neuromct_tf.validation.campaigns import StudySettings, run_exposure_study, run_grid_study
from neuromct_tf.validation.fisher import (
    SimulatedSpectra,
    _integrate_normal,
    _smooth_spectra,
    _SpectraTask,
    default_steps,
    simulate_fisher_spectra,
    simulation_fisher,
    surrogate_fisher,
    surrogate_fisher_differences,
)
from neuromct_tf.validation.pseudodata import SimulationPool
from neuromct_tf.validation.reports import exposure_summary, write_exposure_root

# Decays per source of the exact-model study: large enough that the MLE is near its asymptotic normal regime.
EXACT_EXPOSURE = 20_000
EXACT_DATASETS = 200


@pytest.fixture(scope="module")
def exact_spec(validation_model, tmp_path_factory):
    """The tiny spec with one more testing2 exposure, EXACT_EXPOSURE decays per source."""
    path = tmp_path_factory.mktemp("exact_spec") / "spec.yaml"
    text = validation_model["spec_file"].read_text()
    assert "exposures: [100, 200]" in text
    path.write_text(text.replace("exposures: [100, 200]", f"exposures: [100, 200, {EXACT_EXPOSURE}]"))
    return load_spec(path)


@pytest.fixture(scope="module")
def small_study(validation_model, tmp_path_factory):
    """An exposure study of 5 simulated datasets at each tiny-spec exposure, with the Fisher cross-check."""
    out = tmp_path_factory.mktemp("exposure_study")
    settings = StudySettings(num_datasets=5, seed=3, chunk_size=2)
    study = run_exposure_study(validation_model["spec"], out, settings, fisher_events=3000, model_path=validation_model["path"])
    return {"study": study, "out": out, "settings": settings}


def test_exposure_study_shapes(small_study, validation_model):
    study = small_study["study"]
    num_params = 3 + len(study.spec.sources)
    assert study.exposures == (100, 200)
    for exposure in study.exposures:
        fits = study.fits[exposure]
        assert fits.points.shape == (5, num_params)
        assert fits.errors.shape == (5, num_params)
        assert fits.num_in_range.shape == (5, len(study.spec.sources))
        assert np.array_equal(fits.datasets, np.arange(5))
        assert [entry.name for entry in study.statistics[exposure]] == ["kB", "fC", "LY"]
        assert study.bounds[exposure].crb.shape == (3,)
        assert np.all(study.bounds[exposure].crb > 0)
        assert np.all(np.isfinite(study.bounds[exposure].crb_simulation))
    # The bound scales as 1/sqrt(exposure), up to the Poisson scatter of the mean in-range counts.
    ratio = study.bounds[100].crb / study.bounds[200].crb
    assert np.allclose(ratio, np.sqrt(2.0), rtol=0.05), ratio


def test_exposure_outputs_written(small_study, tmp_path):
    study = small_study["study"]
    root_path = write_exposure_root(study, tmp_path / "fits.root")
    with uproot.open(root_path) as file:
        assert file.classname_of("fits") == "TTree"
        assert file.classname_of("statistics") == "TTree"
        fits = file["fits"].arrays(library="np")
        statistics = file["statistics"].arrays(library="np")
    assert fits["kB"].size == 10
    assert sorted(set(fits["exposure"].tolist())) == [100, 200]
    assert statistics["parameter"].tolist() == [0, 1, 2, 0, 1, 2]
    summary = exposure_summary(study)
    json.dumps(summary, allow_nan=False)
    assert set(summary["statistics"]) == {"100", "200"}
    assert set(summary["statistics"]["100"]["kB"]) >= {"median_bias", "pull_mean", "coverage68", "spread_over_crb"}


def test_exposure_study_resumes(small_study, validation_model):
    out = small_study["out"]
    chunks = sorted((out / "chunks").glob("exposure_*.npz"))
    # 5 datasets in chunks of 2 are 3 chunk files per exposure.
    assert len(chunks) == 6
    modified = {path: path.stat().st_mtime_ns for path in chunks}
    again = run_exposure_study(
        validation_model["spec"], out, small_study["settings"], fisher_events=3000, model_path=validation_model["path"]
    )
    assert {path: path.stat().st_mtime_ns for path in chunks} == modified
    for exposure in again.exposures:
        assert np.array_equal(again.fits[exposure].points, small_study["study"].fits[exposure].points)


def test_same_seed_same_fits(small_study, validation_model, tmp_path):
    # Other chunks, fitted in other batches while two workers simulate the next chunk: every dataset
    # keeps its random streams and starts.
    settings = StudySettings(num_datasets=5, seed=3, chunk_size=3, num_jobs=2)
    study = run_exposure_study(validation_model["spec"], tmp_path, settings, exposures=[200], fisher_events=0,
                               model_path=validation_model["path"])
    reference = small_study["study"].fits[200]
    assert np.array_equal(study.fits[200].num_in_range, reference.num_in_range)
    valid = reference.positive_definite
    assert np.allclose(study.fits[200].points[valid, :3], reference.points[valid, :3], rtol=1e-4)


def test_chunks_of_other_settings_rejected(small_study, validation_model):
    settings = StudySettings(num_datasets=5, seed=4, chunk_size=2)
    with pytest.raises(OutputError, match="other settings"):
        run_exposure_study(validation_model["spec"], small_study["out"], settings, fisher_events=0,
                           model_path=validation_model["path"])


def test_final_output_exists_rejected(validation_model, tmp_path):
    (tmp_path / "exposure_fits.root").write_bytes(b"")
    with pytest.raises(OutputError, match="already exists"):
        run_exposure_study(validation_model["spec"], tmp_path, StudySettings(num_datasets=2), fisher_events=0,
                           model_path=validation_model["path"])


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"exposures": [123]}, "unknown exposure 123"),
        ({"fisher_events": -1}, "invalid number of Fisher events"),
        ({"point": (30.0, 0.5, 10000.0)}, "kB"),
    ],
)
def test_exposure_study_bad_input(validation_model, tmp_path, arguments, message):
    with pytest.raises(InvalidInputError, match=message):
        run_exposure_study(validation_model["spec"], tmp_path, StudySettings(num_datasets=2),
                           model_path=validation_model["path"], **arguments)


def test_zero_datasets_rejected():
    with pytest.raises(InvalidInputError, match="invalid number of datasets 0"):
        StudySettings(num_datasets=0)


def test_grid_study_shapes(validation_model, tmp_path):
    settings = StudySettings(num_datasets=3, seed=2, data_source="surrogate")
    study = run_grid_study(validation_model["spec"], tmp_path, settings, exposure=5000, max_points=3,
                           model_path=validation_model["path"])
    assert study.point_indices.shape == (3,)
    assert np.all(np.diff(study.point_indices) > 0)
    assert study.points.shape == (3, 3)
    assert study.crb.shape == (3, 3)
    assert len(study.fits) == len(study.statistics) == 3
    assert all(fits.points.shape == (3, 8) for fits in study.fits)
    # The points are a seeded draw: the same seed selects the same points.
    again = run_grid_study(validation_model["spec"], tmp_path / "again", settings, exposure=5000, max_points=3,
                           model_path=validation_model["path"])
    assert np.array_equal(again.point_indices, study.point_indices)


@pytest.fixture(scope="module")
def exact_study(exact_spec, validation_model, tmp_path_factory):
    """EXACT_DATASETS fits of pseudo-data drawn from the tiny model's own spectra at the nominal point."""
    settings = StudySettings(num_datasets=EXACT_DATASETS, seed=11, data_source="surrogate", chunk_size=EXACT_DATASETS)
    return run_exposure_study(exact_spec, tmp_path_factory.mktemp("exact"), settings, exposures=[EXACT_EXPOSURE],
                              model_path=validation_model["path"])


@pytest.mark.parametrize("index", [0, 1, 2], ids=["kB", "fC", "LY"])
def test_exact_model_pulls_standard_normal(exact_study, index):
    fits = exact_study.fits[EXACT_EXPOSURE]
    assert fits.converged.mean() > 0.95
    entry = exact_study.statistics[EXACT_EXPOSURE][index]
    count = entry.num_datasets
    assert count >= 0.95 * EXACT_DATASETS
    # The mean of N unit-normal pulls has standard error 1/sqrt(N); the bound is 3.5 of them (0.25 for N = 200).
    assert abs(entry.pull_mean) < 3.5 / np.sqrt(count), entry
    # (N - 1) s^2 of N unit-normal pulls is chi-square with N - 1 degrees of freedom; the band is its central 99.9 %.
    low, high = np.sqrt(stats.chi2.ppf([0.0005, 0.9995], count - 1) / (count - 1))
    assert low < entry.pull_width < high, entry
    # A coverage c of N intervals has binomial standard error sqrt(c (1 - c) / N); the bound is 3.5 of them.
    assert abs(entry.coverage68 - 0.6827) < 3.5 * np.sqrt(0.6827 * 0.3173 / count), entry
    assert abs(entry.coverage95 - 0.95) < 3.5 * np.sqrt(0.95 * 0.05 / count), entry


@pytest.mark.parametrize("index", [0, 1, 2], ids=["kB", "fC", "LY"])
def test_exact_model_spread_at_bound(exact_study, index):
    entry = exact_study.statistics[EXACT_EXPOSURE][index]
    # The sample standard deviation of N normal values has relative standard error 1/sqrt(2 (N - 1)), 5 % for
    # N = 200; the band is 4 of them. An efficient estimator with an exact model reaches the bound.
    tolerance = 4.0 / np.sqrt(2 * (entry.num_datasets - 1))
    assert abs(entry.spread_over_crb - 1.0) < tolerance, entry
    # The Hessian error estimates the same width, with a much smaller scatter between datasets.
    assert abs(entry.sigma_over_crb - 1.0) < tolerance, entry


def test_autodiff_fisher_matches_differences(validation_model):
    spec = validation_model["spec"]
    model, _ = load_regressor(validation_model["path"], spec)
    likelihood = BatchedLikelihood(model, spec, spec.sources)
    expected = np.full(len(spec.sources), 10_000.0)
    points = np.array([spec.nominal(), [10.0, 0.3, 9000.0]])
    autodiff = surrogate_fisher(likelihood, points, np.tile(expected, (2, 1)))
    for index, point in enumerate(points):
        # Central differences with steps of 0.2 % of the box: the truncation error, of order h^2, and the float32
        # rounding of the probabilities, of order 1e-7 / h, both stay below 1e-3 of the information.
        differences = surrogate_fisher_differences(likelihood, point, expected, 0.2 * default_steps(spec))
        physics = slice(0, 3)
        assert np.allclose(autodiff.information[index][physics, physics], differences.information[physics, physics],
                           rtol=1e-2, atol=1e-3 * np.abs(differences.information[physics, physics]).max())
        assert np.allclose(autodiff.crb[index], differences.crb, rtol=1e-2)
        # The normalisations decouple from kB, fC and LY, since the probabilities of a source sum to one.
        assert np.allclose(autodiff.information[index][:3, 3:], 0.0, atol=1e-6 * autodiff.information[index].max())


def test_integrate_normal_matches_closed_form():
    edges = np.linspace(0.0, 2.0, 21)
    means = np.array([0.55, 1.0, 1.97, -1.0])
    sigmas = np.array([0.05, 0.2, 0.1, 0.1])
    expected = sum(np.diff(stats.norm.cdf(edges, m, s)) for m, s in zip(means, sigmas))
    assert np.allclose(_integrate_normal(means, sigmas, edges), expected, atol=1e-12)


def test_smooth_spectrum_matches_simulated_histogram(validation_model):
    """The analytic detection stage reproduces the NPE histogram of the same simulated decays."""
    spec = validation_model["spec"]
    point = tuple(spec.nominal())
    num_events = 20_000
    task = _SpectraTask("Co60", spec.source_id("Co60"), (point,), num_events, 7, "check", tuple(spec.binning.edges_array()))
    entries, _ = _smooth_spectra(task)
    npe, _ = simulate_chunked("Co60", point, num_events, 7, "check", 0, spec.source_id("Co60"))
    histogram = make_histogram(spec.binning)
    histogram.fill(npe)
    counts, _, _ = histogram_counts(histogram)
    # Given the deposits, each bin count is a sum of independent Bernoulli trials with mean entries_b, so
    # (counts - entries)^2 / entries has expectation at most 1. Bins with at least 20 expected entries.
    used = entries[0] >= 20
    chi_square = np.sum((counts[used] - entries[0][used]) ** 2 / entries[0][used])
    assert chi_square < stats.chi2.ppf(0.999, used.sum()), (chi_square, used.sum())


def test_simulation_fisher_spectra(validation_model):
    spec = validation_model["spec"]
    with SimulationPool(1) as pool:
        spectra = simulate_fisher_spectra(spec, spec.nominal(), 2000, 5, pool)
    num_sources = len(spec.sources)
    assert isinstance(spectra, SimulatedSpectra)
    assert spectra.central.shape == (2, num_sources, spec.binning.num_bins)
    assert spectra.shifted.shape == (2, 3, 2, num_sources, spec.binning.num_bins)
    assert np.allclose(spectra.central.sum(axis=-1), 1.0)
    # The two replicas use independent decays.
    assert not np.allclose(spectra.central[0], spectra.central[1])
    fisher = simulation_fisher(("kB", "fC", "LY") + tuple(f"norm_{s}" for s in spec.sources), spectra, np.full(num_sources, 1e4))
    assert fisher.information.shape == (3 + num_sources, 3 + num_sources)
    assert np.all(np.diag(fisher.information)[:3] > 0)


@pytest.fixture(scope="module")
def exact_hmc_study(exact_spec, validation_model, tmp_path_factory):
    """The exact-model study with batched HMC: posterior means and standard deviations in place of the MLEs."""
    settings = StudySettings(
        num_datasets=EXACT_HMC_DATASETS, seed=12, data_source="surrogate", chunk_size=EXACT_HMC_DATASETS, method="hmc"
    )
    return run_exposure_study(exact_spec, tmp_path_factory.mktemp("exact_hmc"), settings, exposures=[EXACT_EXPOSURE],
                              fisher_events=0, model_path=validation_model["path"])


EXACT_HMC_DATASETS = 100


@pytest.mark.parametrize("index", [0, 1, 2], ids=["kB", "fC", "LY"])
def test_exact_model_hmc_pulls_standard_normal(exact_hmc_study, index):
    entry = exact_hmc_study.statistics[EXACT_EXPOSURE][index]
    count = entry.num_datasets
    assert count >= 0.95 * EXACT_HMC_DATASETS
    # Same bands as for the MLE: 3.5 standard errors of the mean and of the coverage, and the central 99.9 %
    # of the width. The posterior standard deviation of 4 x 50 draws scatters by about 5 %, well inside them.
    assert abs(entry.pull_mean) < 3.5 / np.sqrt(count), entry
    low, high = np.sqrt(stats.chi2.ppf([0.0005, 0.9995], count - 1) / (count - 1))
    assert low < entry.pull_width < high, entry
    assert abs(entry.coverage68 - 0.6827) < 3.5 * np.sqrt(0.6827 * 0.3173 / count), entry


def test_hmc_method_settings_checked():
    with pytest.raises(InvalidInputError, match="unknown fit method"):
        StudySettings(method="nuts")
    with pytest.raises(InvalidInputError, match="R-hat needs at least 2"):
        StudySettings(method="hmc", num_chains=1)


def test_hmc_takes_any_start_seed(validation_model, tmp_path):
    from neuromct_tf.validation.campaigns import _start_seeds

    # The start seeds are uint64 and half of them exceed 2**63, the largest seed the sampler takes.
    # Seed 1 of the study gives such a start seed to the first dataset at exposure 200.
    assert int(_start_seeds(1, "validate_exposure_200", range(1))[0]) >= 2**63
    settings = StudySettings(num_datasets=2, seed=1, data_source="surrogate", method="hmc", num_chains=2, num_samples=10)
    study = run_exposure_study(validation_model["spec"], tmp_path, settings, exposures=[200], fisher_events=0,
                               model_path=validation_model["path"])
    assert study.fits[200].points.shape[0] == 2
