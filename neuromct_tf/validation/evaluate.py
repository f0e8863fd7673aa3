"""Scoring of surrogates against a high-statistics test set.

A surrogate is any function that maps parameter points and source ids to
normalised spectra in the spec's binning, e.g.
:meth:`neuromct_tf.models.interpolation.GridInterpolator.predict`.
:func:`evaluate_surrogates` calls each one once on every (test point,
source) and scores its spectra with the metrics of
:mod:`neuromct_tf.validation.metrics`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuromct_tf.data.histograms import GridHistograms
from neuromct_tf.errors import InvalidInputError
from neuromct_tf.io.atomic import atomic_output
from neuromct_tf.specs import DataSpec
from neuromct_tf.validation.metrics import cdf_distances, chi2_per_ndf

logger = logging.getLogger(__name__)

#: Signature of a surrogate: points (N, 3) and source ids (N,) to spectra (N, num_bins).
PredictFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

#: Names of the metrics in :meth:`EvaluationResult.summary` and in the JSON output.
METRIC_NAMES = ("wasserstein", "cramer_von_mises", "kolmogorov_smirnov", "chi2_per_ndf")


@dataclass(frozen=True)
class EvaluationResult:
    """Metrics of every surrogate at every test point and source.

    The metric arrays have shape (num_surrogates, num_points, num_sources).

    Attributes
    ----------
    surrogates : tuple of str
        Surrogate names, in the order of the first axis.
    sources : tuple of str
        Source names, in the order of the last axis.
    points : numpy.ndarray of float64, shape (num_points, 3)
        kB, fC and LY of each test point.
    wasserstein : numpy.ndarray of float64
        Wasserstein-1 distance to the test spectrum, in kNPE.
    cramer_von_mises : numpy.ndarray of float64
        Cramér–von Mises distance ``∫ (F_pred - F_test)² dF_test``, dimensionless.
    kolmogorov_smirnov : numpy.ndarray of float64
        Maximum CDF difference, dimensionless.
    chi2 : numpy.ndarray of float64
        Pearson chi-square of the test counts against the prediction, over bins
        with at least ``min_expected`` expected counts.
    ndf : numpy.ndarray of int64
        Degrees of freedom of ``chi2``.
    example_point : int
        Index of the test point whose spectra are kept for plots.
    example_predicted : numpy.ndarray of float64, shape (num_surrogates, num_sources, num_bins)
        Predicted spectra at the example point.
    example_reference : numpy.ndarray of float64, shape (num_sources, num_bins)
        Test spectra at the example point, normalised.
    """

    surrogates: tuple[str, ...]
    sources: tuple[str, ...]
    points: np.ndarray
    wasserstein: np.ndarray
    cramer_von_mises: np.ndarray
    kolmogorov_smirnov: np.ndarray
    chi2: np.ndarray
    ndf: np.ndarray
    example_point: int
    example_predicted: np.ndarray
    example_reference: np.ndarray

    @property
    def chi2_per_ndf(self) -> np.ndarray:
        """Chi-square per degree of freedom, NaN where ``ndf < 1``."""
        ndf = self.ndf.astype(np.float64)
        return np.divide(self.chi2, ndf, out=np.full(self.chi2.shape, np.nan), where=ndf > 0)

    def metric(self, name: str) -> np.ndarray:
        """Return the metric array called ``name``, one of :data:`METRIC_NAMES`."""
        if name not in METRIC_NAMES:
            raise InvalidInputError(f"unknown metric {name!r}; choose one of {', '.join(METRIC_NAMES)}")
        return getattr(self, name)

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """Return the median over test points of each metric, keyed by surrogate, source and metric name.

        A median is NaN when no test point has a finite value, e.g. a
        chi-square without degrees of freedom.
        """
        medians = {name: _finite_median(self.metric(name)) for name in METRIC_NAMES}
        return {
            surrogate: {
                source: {name: float(medians[name][m, s]) for name in METRIC_NAMES}
                for s, source in enumerate(self.sources)
            }
            for m, surrogate in enumerate(self.surrogates)
        }

    def to_json(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the summary, the per-point metrics and the example spectra as JSON.

        NaN values are written as ``null``. The file is written atomically.

        Raises
        ------
        OutputError
            If the file exists without ``overwrite`` or cannot be written.
        """
        document = {
            "surrogates": list(self.surrogates),
            "sources": list(self.sources),
            "axes": ["surrogate", "point", "source"],
            "points": self.points.tolist(),
            "summary": self.summary(),
            "metrics": {name: _json_array(self.metric(name)) for name in METRIC_NAMES},
            "chi2": _json_array(self.chi2),
            "ndf": self.ndf.tolist(),
            "example": {
                "point_index": self.example_point,
                "point": self.points[self.example_point].tolist(),
                "predicted": _json_array(self.example_predicted),
                "reference": _json_array(self.example_reference),
            },
        }
        with atomic_output(path, overwrite=overwrite) as temporary:
            temporary.write_text(json.dumps(_nan_to_none(document), indent=1))
        logger.info("wrote the evaluation of %d surrogates to %s", len(self.surrogates), path)
        return Path(path)


def evaluate_surrogates(
    predict_fns: Mapping[str, PredictFn],
    test: GridHistograms,
    spec: DataSpec,
    min_expected: float = 5.0,
    example_point: int | None = None,
) -> EvaluationResult:
    """Score each surrogate at every (point, source) of a high-statistics test set.

    Parameters
    ----------
    predict_fns : mapping of str to callable
        Surrogate name to a function of ``points`` (float64, shape (N, 3)) and
        ``source_ids`` (int64, shape (N,)) that returns spectra of shape
        (N, num_bins). Each function is called once with every test point and source.
    test : GridHistograms
        Test spectra in the spec's binning; every (point, source) needs entries.
    spec : DataSpec
        Gives the sources and the binning.
    min_expected : float
        Smallest expected count of a bin in the chi-square, see
        :func:`~neuromct_tf.validation.metrics.chi2_per_ndf`.
    example_point : int, optional
        Test point whose spectra are kept for plots. By default, the point
        where the first surrogate's W1, averaged over sources, is the median.

    Returns
    -------
    EvaluationResult

    Raises
    ------
    InvalidInputError
        For no surrogates, test histograms that do not match the spec or have
        an empty (point, source), or a surrogate whose output has the wrong
        shape or invalid values. The message names the surrogate.
    """
    if not predict_fns:
        raise InvalidInputError("no surrogate to evaluate; pass at least one name and predict function")
    _check_test_set(test, spec)
    edges = spec.binning.edges_array()
    num_points, num_sources, num_bins = test.counts.shape
    reference = test.probabilities()
    query_points = np.repeat(test.points, num_sources, axis=0)
    query_sources = np.tile(np.arange(num_sources, dtype=np.int64), num_points)

    predictions, scores = [], []
    for name, predict in predict_fns.items():
        logger.info("evaluating surrogate %s on %d points and %d sources", name, num_points, num_sources)
        predicted = _predict(name, predict, query_points, query_sources, num_bins).reshape(num_points, num_sources, num_bins)
        predictions.append(predicted)
        scores.append(_score(name, predicted, reference, test.counts, edges, min_expected))

    wasserstein = np.stack([s[0].wasserstein for s in scores])
    if example_point is None:
        example_point = _median_point(wasserstein[0])
    elif not 0 <= example_point < num_points:
        raise InvalidInputError(f"example point {example_point} is out of range; the test set has {num_points} points")
    return EvaluationResult(
        surrogates=tuple(predict_fns),
        sources=tuple(spec.sources),
        points=np.asarray(test.points, dtype=np.float64),
        wasserstein=wasserstein,
        cramer_von_mises=np.stack([s[0].cramer_von_mises for s in scores]),
        kolmogorov_smirnov=np.stack([s[0].kolmogorov_smirnov for s in scores]),
        chi2=np.stack([s[1].chi2 for s in scores]),
        ndf=np.stack([s[1].ndf for s in scores]),
        example_point=int(example_point),
        example_predicted=np.stack([p[example_point] for p in predictions]),
        example_reference=reference[example_point],
    )


def _check_test_set(test: GridHistograms, spec: DataSpec) -> None:
    num_points, num_sources, num_bins = test.counts.shape
    if num_points == 0:
        raise InvalidInputError("the test histograms have no points; histogram a test grid file first")
    if num_sources != len(spec.sources) or num_bins != spec.binning.num_bins:
        raise InvalidInputError(
            f"the test histograms have {num_sources} sources and {num_bins} bins, but the spec has "
            f"{len(spec.sources)} sources and {spec.binning.num_bins} bins; build them with the same spec"
        )
    empty = np.argwhere(test.counts.sum(axis=-1) == 0)
    if empty.size:
        point, source = (int(v) for v in empty[0])
        raise InvalidInputError(
            f"{len(empty)} (point, source) pairs of the test set have no entries in the binning, the first is "
            f"point {point} ({test.points[point].tolist()}), source {spec.sources[source]}; simulate more test events"
        )


def _predict(name: str, predict: PredictFn, points: np.ndarray, source_ids: np.ndarray, num_bins: int) -> np.ndarray:
    try:
        predicted = np.asarray(predict(points.copy(), source_ids.copy()), dtype=np.float64)
    except InvalidInputError as error:
        raise InvalidInputError(f"surrogate {name!r} rejected the test points: {error}") from error
    expected_shape = (points.shape[0], num_bins)
    if predicted.shape != expected_shape:
        raise InvalidInputError(
            f"surrogate {name!r} returned an array of shape {predicted.shape} for {points.shape[0]} queries; "
            f"it must return one spectrum of the spec's binning per query, shape {expected_shape}"
        )
    return predicted


def _score(name, predicted, reference, counts, edges, min_expected):
    try:
        return cdf_distances(predicted, reference, edges), chi2_per_ndf(predicted, counts, min_expected)
    except InvalidInputError as error:
        raise InvalidInputError(f"surrogate {name!r}: {error}") from error


def _median_point(wasserstein: np.ndarray) -> int:
    """Return the point whose W1 averaged over sources is the median, from ``wasserstein`` of shape (num_points, num_sources)."""
    mean = wasserstein.mean(axis=1)
    return int(np.argsort(mean, kind="stable")[(mean.size - 1) // 2])


def _finite_median(values: np.ndarray) -> np.ndarray:
    """Return the median over axis 1 of the finite values, NaN where there are none."""
    finite = np.isfinite(values)
    masked = np.where(finite, values, np.nan)
    result = np.full(values.shape[:1] + values.shape[2:], np.nan)
    has_values = finite.any(axis=1)
    # np.nanmedian warns on all-NaN slices, so it only gets slices with a finite value.
    result[has_values] = np.nanmedian(np.moveaxis(masked, 1, -1)[has_values], axis=-1)
    return result


def _json_array(values: np.ndarray) -> list:
    return np.asarray(values, dtype=np.float64).tolist()


def _nan_to_none(value):
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _nan_to_none(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(item) for item in value]
    return value
