"""Fixture of the fit tests: a tiny regressor trained briefly on the tiny grids."""

from __future__ import annotations

import pytest

from neuromct_tf.data.histograms import build_grid_histograms
from neuromct_tf.models.regressor import RegressorConfig, load_regressor
from neuromct_tf.training.regressor import TrainingConfig, train_regressor

# No Fourier features: three grid values per parameter cannot constrain sin(8 pi x), and the fit
# tests need a likelihood without spurious modes between the grid values.
TINY_MODEL = RegressorConfig(num_blocks=1, width=16, num_heads=2, feed_forward_width=32, head_width=64, num_frequencies=0)


@pytest.fixture(scope="session")
def fit_model(tiny_grids, tmp_path_factory):
    """A tiny regressor trained for 15 epochs on the tiny grids; a dict with the spec, spec file, model and its path."""
    spec = tiny_grids["spec"]
    directory = tmp_path_factory.mktemp("fit_model")
    summary = train_regressor(
        build_grid_histograms([tiny_grids["training"]], spec),
        build_grid_histograms([tiny_grids["validation"]], spec),
        spec,
        directory / "tiny.keras",
        TINY_MODEL,
        TrainingConfig(epochs=15, batch_size=32, learning_rate=3e-3, warmup_epochs=2, seed=3),
    )
    model, _ = load_regressor(summary.output, spec)
    return {"spec": spec, "spec_file": tiny_grids["spec_file"], "model": model, "path": summary.output}
