"""Tests of the surrogate evaluation on a tiny simulated grid, and of its JSON and PNG outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuromct_tf.data.histograms import GridHistograms, build_grid_histograms
from neuromct_tf.errors import InvalidInputError
from neuromct_tf.models.interpolation import GridInterpolator
from neuromct_tf.plotting.evaluation import plot_evaluation
from neuromct_tf.sim.runner import simulate_grid
from neuromct_tf.validation.evaluate import METRIC_NAMES, evaluate_surrogates


def flat_surrogate(num_bins: int):
    def predict(points: np.ndarray, source_ids: np.ndarray) -> np.ndarray:
        return np.full((points.shape[0], num_bins), 1.0 / num_bins)

    return predict


@pytest.fixture
def evaluation(tiny_spec, tmp_path):
    """The interpolation baseline and a flat spectrum, scored on the 2 validation points with 5000 events."""
    training_dir = tmp_path / "training"
    test_dir = tmp_path / "test"
    simulate_grid(tiny_spec, "training", training_dir, seed=1, num_events=300)
    # The tiny spec's validation grid (kB 10.5, fC 0.25 and 0.75, LY 9000) lies inside the training grid.
    simulate_grid(tiny_spec, "validation", test_dir, seed=2, num_events=5000)
    training = build_grid_histograms([training_dir / "training.root"], tiny_spec)
    test = build_grid_histograms([test_dir / "validation.root"], tiny_spec)

    interpolator = GridInterpolator.from_histograms(training, tiny_spec.grid("training"))
    surrogates = {"interpolation": interpolator.predict, "flat": flat_surrogate(tiny_spec.binning.num_bins)}
    return evaluate_surrogates(surrogates, test, tiny_spec)


def test_baseline_beats_flat_spectrum(evaluation, tiny_spec):
    summary = evaluation.summary()

    assert evaluation.wasserstein.shape == (2, 2, len(tiny_spec.sources))
    # The chi-square is not compared. The baseline blends the peaks of its
    # neighbours (LY 8000 and 10000 for a test point at 9000), and for some
    # sources the blend's small tails under the test peak give a larger
    # chi-square than the flat spectrum does.
    for source in tiny_spec.sources:
        baseline, flat = summary["interpolation"][source], summary["flat"][source]
        assert baseline["wasserstein"] < flat["wasserstein"], source
        assert baseline["kolmogorov_smirnov"] < flat["kolmogorov_smirnov"], source


def test_evaluation_writes_json_and_png(evaluation, tiny_spec, tmp_path):
    json_path = evaluation.to_json(tmp_path / "evaluation.json")
    png_path = plot_evaluation(evaluation, tiny_spec, tmp_path / "evaluation.png")

    document = json.loads(json_path.read_text())
    assert document["surrogates"] == ["interpolation", "flat"]
    assert set(document["metrics"]) == set(METRIC_NAMES)
    median_w1 = document["summary"]["flat"]["Cs137"]["wasserstein"]
    assert median_w1 == pytest.approx(float(np.median(evaluation.wasserstein[1, :, 0])))
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_wrong_output_shape_names_surrogate(tiny_spec):
    num_bins = tiny_spec.binning.num_bins
    counts = np.ones((1, len(tiny_spec.sources), num_bins), dtype=np.int32)
    test = GridHistograms(
        points=np.array([[10.0, 0.5, 9000.0]]),
        counts=counts,
        num_underflow=np.zeros((1, len(tiny_spec.sources)), dtype=np.int64),
        num_overflow=np.zeros((1, len(tiny_spec.sources)), dtype=np.int64),
        grid=("test",),
        point_index=np.zeros(1, dtype=np.int64),
    )

    with pytest.raises(InvalidInputError, match="surrogate 'short'"):
        evaluate_surrogates({"short": flat_surrogate(num_bins - 1)}, test, tiny_spec)
