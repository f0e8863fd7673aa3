"""Shared fixtures: a tiny data spec and a runner for the command line."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import pytest

from neuromct_tf.cli.main import main
from neuromct_tf.specs import load_spec

# A spec with 3 values per parameter axis and a coarse binning, for fast tests.
TINY_SPEC_YAML = textwrap.dedent(
    """
    binning: {low: 0.0, high: 16.0, num_bins: 160}
    grids:
      training:
        events: 300
        axes:
          kB: {values: [6.0, 15.0, 24.0]}
          fC: {values: [0.0, 0.5, 1.0]}
          LY: {values: [8000.0, 10000.0, 12000.0]}
      validation:
        events: 300
        axes:
          kB: {values: [10.5]}
          fC: {values: [0.25, 0.75]}
          LY: {values: [9000.0]}
      testing2:
        exposures: [100, 200]
        num_datasets: 2
    """
)


@pytest.fixture
def tiny_spec_file(tmp_path):
    """Path of a YAML spec file with tiny grids."""
    path = tmp_path / "tiny_spec.yaml"
    path.write_text(TINY_SPEC_YAML)
    return path


@pytest.fixture
def tiny_spec(tiny_spec_file):
    """The tiny :class:`DataSpec`."""
    return load_spec(tiny_spec_file)


@dataclass
class CLIResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(capsys):
    """Run ``neuromct-tf`` with a list of arguments in this process and capture its output."""

    def run(*args) -> CLIResult:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CLIResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def tiny_grids(tmp_path_factory):
    """MC grid files of the tiny spec's training and validation grids, simulated once per session.

    Returns a dict with the spec file, the spec and the two file paths.
    """
    from neuromct_tf.sim.runner import simulate_grid

    directory = tmp_path_factory.mktemp("tiny_grids")
    spec_file = directory / "tiny_spec.yaml"
    spec_file.write_text(TINY_SPEC_YAML)
    spec = load_spec(spec_file)
    training = simulate_grid(spec, "training", directory, seed=11).paths[0]
    validation = simulate_grid(spec, "validation", directory, seed=12).paths[0]
    return {"spec_file": spec_file, "spec": spec, "training": training, "validation": validation}


@pytest.fixture(scope="session")
def validation_model(tiny_grids, tmp_path_factory):
    """A tiny regressor of the tiny spec, trained for 10 epochs; a dict with the spec, spec file and model path.

    The validation studies need a model whose spectra depend on kB, fC and LY,
    not an accurate one: their exact-model checks draw pseudo-data from the
    model itself.
    """
    from neuromct_tf.data.histograms import build_grid_histograms
    from neuromct_tf.models.regressor import RegressorConfig
    from neuromct_tf.training.regressor import TrainingConfig, train_regressor

    spec = tiny_grids["spec"]
    summary = train_regressor(
        build_grid_histograms([tiny_grids["training"]], spec),
        build_grid_histograms([tiny_grids["validation"]], spec),
        spec,
        tmp_path_factory.mktemp("validation_model") / "tiny.keras",
        # No Fourier features, as in the fit tests: the tiny grids cannot pin them down.
        RegressorConfig(num_blocks=1, width=16, num_heads=2, feed_forward_width=32, head_width=64, num_frequencies=0),
        TrainingConfig(epochs=10, batch_size=32, learning_rate=3e-3, warmup_epochs=2, seed=5),
    )
    return {"spec": spec, "spec_file": tiny_grids["spec_file"], "path": summary.output}
