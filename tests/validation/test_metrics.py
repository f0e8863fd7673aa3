"""Tests of the spectrum distances and the Pearson chi-square against closed-form results."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neuromct_tf.errors import InvalidInputError
from neuromct_tf.validation.metrics import cdf_distances, chi2_per_ndf

EDGES = np.linspace(0.0, 10.0, 101)  # 100 bins of 0.1 kNPE


def one_hot(index: int, num_bins: int = 100) -> np.ndarray:
    spectrum = np.zeros(num_bins)
    spectrum[index] = 1.0
    return spectrum


def gaussian_spectrum(edges: np.ndarray, mean: float, sigma: float) -> np.ndarray:
    cdf = np.array([0.5 * (1.0 + math.erf((x - mean) / (sigma * math.sqrt(2.0)))) for x in edges])
    return np.diff(cdf)


def test_w1_of_shifted_spectrum_is_shift():
    shape = np.array([1.0, 3.0, 4.0, 2.0])
    predicted = np.zeros(100)
    reference = np.zeros(100)
    predicted[20:24] = shape
    reference[37:41] = shape

    distances = cdf_distances(predicted / shape.sum(), reference / shape.sum(), EDGES)

    # The shift is 17 bins of 0.1 kNPE. W1 is exact because both spectra are uniform inside each bin.
    assert distances.wasserstein == pytest.approx(1.7, rel=1e-12)


def test_w1_of_gaussians_is_mean_difference():
    edges = np.linspace(-10.0, 10.0, 2001)
    width = edges[1] - edges[0]
    predicted = gaussian_spectrum(edges, 0.3, 1.0)
    reference = gaussian_spectrum(edges, -0.5, 1.0)

    distances = cdf_distances(predicted, reference, edges)

    # Binning moves each CDF by at most one bin width in W1, and the tails
    # beyond 9 sigma are negligible, so the result is within 2 widths of 0.8.
    assert abs(distances.wasserstein - 0.8) <= 2 * width


def test_ks_of_disjoint_spectra_is_one():
    distances = cdf_distances(one_hot(10), one_hot(60), EDGES)

    assert distances.kolmogorov_smirnov == pytest.approx(1.0, abs=1e-15)
    assert distances.wasserstein == pytest.approx(5.0, rel=1e-12)


def test_cvm_of_disjoint_spectra_is_third():
    # Over the reference bin the CDF difference falls linearly from 1 to 0 (or
    # rises from 0 to -1), and the mean of t² over [0, 1] is 1/3.
    assert cdf_distances(one_hot(10), one_hot(60), EDGES).cramer_von_mises == pytest.approx(1 / 3, rel=1e-12)
    assert cdf_distances(one_hot(60), one_hot(10), EDGES).cramer_von_mises == pytest.approx(1 / 3, rel=1e-12)


def test_identical_spectra_give_zero():
    spectrum = gaussian_spectrum(EDGES, 4.0, 1.2)

    distances = cdf_distances(spectrum, spectrum, EDGES)

    assert distances.wasserstein == pytest.approx(0.0, abs=1e-15)
    assert distances.cramer_von_mises == pytest.approx(0.0, abs=1e-15)
    assert distances.kolmogorov_smirnov == pytest.approx(0.0, abs=1e-15)


def test_distances_vectorised_over_leading_axes():
    rng = np.random.default_rng(1)
    predicted = rng.random((2, 3, 100))
    reference = rng.random((2, 3, 100))

    batch = cdf_distances(predicted, reference, EDGES)

    assert batch.wasserstein.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            single = cdf_distances(predicted[i, j], reference[i, j], EDGES)
            assert batch.wasserstein[i, j] == pytest.approx(float(single.wasserstein), rel=1e-12)
            assert batch.cramer_von_mises[i, j] == pytest.approx(float(single.cramer_von_mises), rel=1e-12)
            assert batch.kolmogorov_smirnov[i, j] == pytest.approx(float(single.kolmogorov_smirnov), rel=1e-12)


def test_w1_with_crossing_cdfs_is_exact():
    # Predicted mass 1 in bin 0, reference mass 1/2 in bins 0 and 1. The CDF
    # difference is 0 -> 1/2 over bin 0 and 1/2 -> 0 over bin 1: W1 = 0.1 / 2.
    predicted = one_hot(0)
    reference = 0.5 * (one_hot(0) + one_hot(1))

    assert cdf_distances(predicted, reference, EDGES).wasserstein == pytest.approx(0.05, rel=1e-12)

    # Predicted 1/2 in bins 0 and 2, reference 1 in bin 1, so the difference is 0 -> 1/2 -> -1/2 -> 0.
    # The middle bin crosses zero and contains two triangles of area 0.1 * 1/8 each.
    predicted = 0.5 * (one_hot(0) + one_hot(2))
    reference = one_hot(1)
    expected = 0.1 * (0.25 + 0.25 + 0.25)
    assert cdf_distances(predicted, reference, EDGES).wasserstein == pytest.approx(expected, rel=1e-12)


def test_distances_reject_negative_spectrum():
    spectrum = one_hot(3)
    spectrum[5] = -0.1

    with pytest.raises(InvalidInputError, match="negative"):
        cdf_distances(spectrum, one_hot(3), EDGES)


def test_distances_reject_wrong_bin_count():
    with pytest.raises(InvalidInputError, match="100 bins"):
        cdf_distances(np.ones(99) / 99, one_hot(3), EDGES)


def test_chi2_of_poisson_counts_near_one():
    rng = np.random.default_rng(7)
    probabilities = gaussian_spectrum(EDGES, 5.0, 1.5)
    probabilities /= probabilities.sum()
    counts = rng.poisson(200_000 * probabilities, size=(40, 100))

    chi2, ndf = chi2_per_ndf(probabilities, counts)

    # Pooled over 40 spectra the reduced chi-square has standard deviation
    # sqrt(2 / total ndf); 4 of them bound a correct implementation.
    total_ndf = ndf.sum()
    assert abs(chi2.sum() / total_ndf - 1.0) < 4 * math.sqrt(2 / total_ndf)


def test_chi2_of_shifted_spectrum_large():
    rng = np.random.default_rng(8)
    probabilities = gaussian_spectrum(EDGES, 5.0, 1.5)
    probabilities /= probabilities.sum()
    counts = rng.poisson(200_000 * probabilities)
    shifted = gaussian_spectrum(EDGES, 5.1, 1.5)

    result = chi2_per_ndf(shifted, counts)

    # A shift of 1/15 sigma with 2e5 entries lies far beyond the chi-square's
    # fluctuation of sqrt(2 / ndf) around 1.
    assert result.reduced > 1 + 10 * math.sqrt(2 / result.ndf)


def test_chi2_skips_small_expected_bins():
    probabilities = np.zeros(100)
    probabilities[:10] = 0.099
    probabilities[10:20] = 0.001
    counts = np.round(1000 * probabilities)

    result = chi2_per_ndf(probabilities, counts, min_expected=5)

    # Expected counts are 99 in bins 0-9 and 1 in bins 10-19, so only the first 10 bins count.
    assert result.ndf == 9
    assert result.chi2 == pytest.approx(0.0, abs=1e-12)
