"""Distances between binned NPE spectra and a Pearson chi-square test of counts.

Every function takes arrays of shape (..., num_bins) and works on the last
axis, so one call scores many points and sources at once. A spectrum is read
as a distribution with uniform density inside each bin. Its cumulative
distribution function (CDF) is then piecewise linear between the bin edges,
and the CDF distances below are exact integrals of that CDF, not sums over
bin centres.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from neuromct_tf.errors import InvalidInputError


@dataclass(frozen=True)
class CDFDistances:
    """Distances between the CDFs of predicted and reference spectra.

    Every attribute has the leading shape of the inputs, i.e. one value per spectrum.

    Attributes
    ----------
    wasserstein : numpy.ndarray of float64
        Wasserstein-1 distance, the integral of ``|F_p(x) - F_r(x)|`` over the
        binning, in kNPE (the unit of the edges).
    cramer_von_mises : numpy.ndarray of float64
        Cramér–von Mises distance ``∫ (F_p - F_r)² dF_r``, weighted by the
        reference distribution, dimensionless. It is not symmetric in the two spectra.
    kolmogorov_smirnov : numpy.ndarray of float64
        Kolmogorov–Smirnov distance ``max_x |F_p(x) - F_r(x)|``, dimensionless, in [0, 1].
    """

    wasserstein: np.ndarray
    cramer_von_mises: np.ndarray
    kolmogorov_smirnov: np.ndarray


class ChiSquare(NamedTuple):
    """Pearson chi-square of counts against a predicted spectrum, which unpacks as ``(chi2, ndf)``.

    Attributes
    ----------
    chi2 : numpy.ndarray of float64
        Pearson chi-square per spectrum.
    ndf : numpy.ndarray of int64
        Degrees of freedom per spectrum: bins used minus one.
    """

    chi2: np.ndarray
    ndf: np.ndarray

    @property
    def reduced(self) -> np.ndarray:
        """Chi-square per degree of freedom, NaN where ``ndf < 1``."""
        ndf = np.asarray(self.ndf, dtype=np.float64)
        return np.divide(self.chi2, ndf, out=np.full(np.shape(self.chi2), np.nan), where=ndf > 0)


def cdf_distances(predicted, reference, edges) -> CDFDistances:
    """Compute the Wasserstein-1, Cramér–von Mises and Kolmogorov–Smirnov distances of binned spectra.

    With the CDFs ``F_p`` of ``predicted`` and ``F_r`` of ``reference``, both
    linear inside each bin, the distances are

    - Wasserstein-1: ``W1 = ∫ |F_p(x) - F_r(x)| dx``, in the unit of ``edges``;
    - Cramér–von Mises: ``ω² = ∫ (F_p(x) - F_r(x))² dF_r(x)``, the squared CDF
      difference averaged over the reference distribution;
    - Kolmogorov–Smirnov: ``KS = max_x |F_p(x) - F_r(x)|``, reached at a bin edge.

    All three are zero for identical spectra.

    Parameters
    ----------
    predicted, reference : array_like, shape (..., num_bins)
        Non-negative spectra; the two shapes must broadcast. Each spectrum is
        divided by its sum, so a float32 model output that sums to 1 only up
        to rounding is accepted.
    edges : array_like, shape (num_bins + 1,)
        Strictly increasing bin edges, in kNPE.

    Returns
    -------
    CDFDistances
        Arrays of the broadcast leading shape ``...``.

    Raises
    ------
    InvalidInputError
        For mismatched shapes, edges that are not strictly increasing, or a
        spectrum that is negative, not finite or sums to zero.
    """
    edges = _check_edges(edges)
    predicted, reference = _broadcast_spectra(predicted, reference, edges.size - 1)
    p = _normalise(predicted, "predicted")
    r = _normalise(reference, "reference")

    # CDF differences at every edge, from 0 at the first edge to 0 at the last.
    zeros = np.zeros(p.shape[:-1] + (1,))
    difference = np.concatenate([zeros, np.cumsum(p - r, axis=-1)], axis=-1)
    left, right = difference[..., :-1], difference[..., 1:]
    widths = np.diff(edges)

    return CDFDistances(
        wasserstein=np.sum(widths * _mean_abs_linear(left, right), axis=-1),
        # Inside a bin dF_r = r_i dt for t in [0, 1], and the mean of (a + (b - a) t)² is (a² + ab + b²) / 3.
        cramer_von_mises=np.sum(r * (left**2 + left * right + right**2) / 3.0, axis=-1),
        kolmogorov_smirnov=np.max(np.abs(difference), axis=-1),
    )


def chi2_per_ndf(predicted, reference_counts, min_expected: float = 5.0) -> ChiSquare:
    """Compute the Pearson chi-square of observed counts against a predicted spectrum.

    With ``N`` the total of ``reference_counts`` over the binning and
    ``e_i = N p_i`` the expected counts, ``chi2 = Σ (n_i - e_i)² / e_i`` over
    the bins with ``e_i >= min_expected``. The statistic follows a chi-square
    distribution only when the Poisson counts are close to Gaussian. Bins
    with small ``e_i`` would instead dominate the sum through the ``1 / e_i``
    weight, so they are left out. ``ndf`` is the number of bins used minus
    one, because ``N`` fixes the normalisation.

    NOTE: counts in the excluded bins, e.g. where the prediction is zero but
    the reference is not, do not enter the chi-square. The CDF distances of
    :func:`cdf_distances` cover those bins.

    Parameters
    ----------
    predicted : array_like, shape (..., num_bins)
        Non-negative predicted spectra, divided by their sums before use.
    reference_counts : array_like, shape (..., num_bins)
        Non-negative observed counts (high statistics); must broadcast with ``predicted``.
    min_expected : float
        Smallest expected count of a bin that enters the sum.

    Returns
    -------
    ChiSquare
        ``chi2`` (float64) and ``ndf`` (int64), arrays of the broadcast leading
        shape. ``chi2`` is 0 and ``ndf`` is -1 or 0 where fewer than two bins qualify.

    Raises
    ------
    InvalidInputError
        For mismatched shapes, negative or non-finite values, a predicted
        spectrum that sums to zero, or ``min_expected <= 0``.
    """
    if not min_expected > 0:
        raise InvalidInputError(f"invalid min_expected {min_expected!r}; give a positive expected count, e.g. 5")
    predicted = np.asarray(predicted, dtype=np.float64)
    num_bins = predicted.shape[-1] if predicted.ndim else 0
    predicted, counts = _broadcast_spectra(predicted, reference_counts, num_bins, ("predicted", "reference_counts"))
    _check_non_negative(counts, "reference_counts")
    p = _normalise(predicted, "predicted")

    total = counts.sum(axis=-1, keepdims=True)
    expected = total * p
    used = expected >= min_expected
    terms = np.divide((counts - expected) ** 2, expected, out=np.zeros_like(expected), where=used)
    return ChiSquare(chi2=terms.sum(axis=-1), ndf=used.sum(axis=-1).astype(np.int64) - 1)


def _mean_abs_linear(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Return the mean of ``|a + (b - a) t|`` over ``t`` in [0, 1], elementwise for ``a=left``, ``b=right``."""
    magnitude = np.abs(left) + np.abs(right)
    same_sign = left * right >= 0
    # With a sign change the line crosses zero inside the interval and the two
    # triangles have areas a² / (2 (|a| + |b|)) and b² / (2 (|a| + |b|)).
    crossing = np.divide(left**2 + right**2, 2.0 * magnitude, out=np.zeros_like(magnitude), where=magnitude > 0)
    return np.where(same_sign, 0.5 * magnitude, crossing)


def _check_edges(edges) -> np.ndarray:
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.isfinite(edges)):
        raise InvalidInputError(
            f"invalid bin edges of shape {edges.shape}: give a 1-D array of at least two finite values, "
            "e.g. spec.binning.edges_array()"
        )
    if not np.all(np.diff(edges) > 0):
        raise InvalidInputError("invalid bin edges: they must be strictly increasing, as spec.binning.edges_array() is")
    return edges


def _broadcast_spectra(first, second, num_bins: int, names=("predicted", "reference")) -> tuple[np.ndarray, np.ndarray]:
    first = np.asarray(first, dtype=np.float64)
    second = np.asarray(second, dtype=np.float64)
    for name, array in zip(names, (first, second)):
        if array.ndim == 0 or array.shape[-1] != num_bins:
            raise InvalidInputError(
                f"{name} has shape {array.shape}, but the last axis must have the {num_bins} bins"
            )
    try:
        return tuple(np.broadcast_arrays(first, second))  # type: ignore[return-value]
    except ValueError:
        raise InvalidInputError(
            f"{names[0]} of shape {first.shape} and {names[1]} of shape {second.shape} "
            "do not broadcast; give one predicted spectrum per reference spectrum"
        ) from None


def _check_non_negative(values: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(values)):
        raise InvalidInputError(f"{name} contains NaN or infinite values; check the surrogate or the input file")
    if np.any(values < 0):
        raise InvalidInputError(
            f"{name} contains negative values (minimum {values.min():g}); spectra and counts must be non-negative"
        )


def _normalise(spectra: np.ndarray, name: str) -> np.ndarray:
    _check_non_negative(spectra, name)
    totals = spectra.sum(axis=-1, keepdims=True)
    if np.any(totals <= 0):
        empty = int(np.count_nonzero(totals <= 0))
        raise InvalidInputError(
            f"{empty} {name} spectra sum to zero and cannot be normalised; "
            "drop the (point, source) pairs without entries in the binning"
        )
    return spectra / totals
