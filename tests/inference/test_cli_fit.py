"""``neuromct-tf fit`` end to end: outputs on simulated calibration data, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import uproot
from conftest import TINY_MODEL

from neuromct_tf.io.calib import LAYOUT_PRESETS, write_calibration
from neuromct_tf.io.metadata import FileMetadata
from neuromct_tf.io.rootfile import create_root
from neuromct_tf.models.regressor import build_regressor, save_regressor
from neuromct_tf.specs import default_spec

SOURCES = ("Cs137", "Co60", "AmBe")


@pytest.fixture(scope="module")
def calibration_file(fit_model, tmp_path_factory):
    """Simulated calibration data of three sources at an interior point of the tiny spec."""
    from neuromct_tf.cli.main import main

    path = tmp_path_factory.mktemp("calib") / "calib.root"
    code = main([
        "--quiet", "simulate", "calib", "--spec", str(fit_model["spec_file"]), "--point", "15,0.5,10000",
        "--events", "3000", "--sources", ",".join(SOURCES), "--out", str(path), "--seed", "4",
    ])
    assert code == 0
    return path


def fit_args(fit_model, *args):
    return ["fit", *args, "--model", fit_model["path"], "--spec", fit_model["spec_file"]]


def test_fit_writes_all_outputs(run_cli, fit_model, calibration_file, tmp_path):
    out = tmp_path / "fit"
    result = run_cli(*fit_args(
        fit_model, calibration_file, "--out", out, "--chains", 4, "--burnin", 20, "--samples", 25,
        "--truth", "15,0.5,10000", "--seed", 3,
    ))
    assert result.exit_code == 0, result.stderr
    for name in ("result.json", "chains.root", "corner.png", "spectra.png"):
        assert (out / name).is_file(), name
    assert (out / "corner.png").read_bytes()[:4] == b"\x89PNG"

    content = json.loads((out / "result.json").read_text())
    assert content["method"] == "mcmc"
    assert set(content["parameters"]) == {"kB", "fC", "LY", *(f"norm_{s}" for s in SOURCES)}
    assert content["missing_sources"] == ["K40", "AmC"]
    assert content["truth"] == {"kB": 15.0, "fC": 0.5, "LY": 10000.0}
    assert set(content["diagnostics"]["r_hat"]) == set(content["parameters"])
    assert content["sampler"]["num_chains"] == 4
    ambe = content["sources"]["AmBe"]
    assert ambe["in_range"] + ambe["underflow"] + ambe["overflow"] == ambe["entries"]
    # A neutron source writes two triggers per decay, so AmBe has more entries than its 3000 decays.
    assert ambe["entries"] > 3000
    low, high = content["parameters"]["LY"]["interval68"]
    assert low < content["parameters"]["LY"]["median"] < high

    with uproot.open(out / "chains.root") as file:
        tree = file["chains"]
        assert tree.num_entries == 4 * 25
        expected = {"kB", "fC", "LY", "log_posterior", "divergent", "chain", "draw", *(f"norm_{s}" for s in SOURCES)}
        assert set(tree.keys()) == expected
        arrays = tree.arrays(["chain", "draw"], library="np")
        assert np.array_equal(np.unique(arrays["chain"]), np.arange(4))
        assert arrays["draw"].max() == 24

    assert "posterior" in result.stdout
    assert "sources not found, left out of the fit: K40, AmC" in result.stdout
    assert "K40, AmC" in result.stderr


def test_fit_mle_method_outputs(run_cli, fit_model, calibration_file, tmp_path):
    out = tmp_path / "mle"
    result = run_cli(*fit_args(fit_model, calibration_file, "--out", out, "--method", "mle"))
    assert result.exit_code == 0, result.stderr
    assert (out / "result.json").is_file()
    assert (out / "spectra.png").is_file()
    assert not (out / "chains.root").exists()
    assert json.loads((out / "result.json").read_text())["method"] == "mle"


def test_existing_output_needs_overwrite(run_cli, fit_model, calibration_file, tmp_path):
    (tmp_path / "result.json").write_text("{}")
    result = run_cli(*fit_args(fit_model, calibration_file, "--out", tmp_path, "--method", "mle"))
    assert result.exit_code == 2
    assert "--overwrite" in result.stderr


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("neuromct-tf: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_zero_chains_rejected(run_cli, fit_model, calibration_file, tmp_path):
    result = run_cli(*fit_args(fit_model, calibration_file, "--out", tmp_path / "out", "--chains", 0))
    assert_one_line_error(result, "number of chains 0")
    assert not (tmp_path / "out").exists()


def test_file_without_sources_rejected(run_cli, fit_model, tmp_path):
    path = tmp_path / "other.root"
    with create_root(path) as file:
        file.mktree("energy", {"npe": np.float64})
        file["energy"].extend({"npe": np.ones(10)})
    result = run_cli(*fit_args(fit_model, path, "--out", tmp_path / "out"))
    assert_one_line_error(result, "has none of the sources")


def test_source_without_counts_rejected(run_cli, fit_model, tmp_path):
    spec = fit_model["spec"]
    path = tmp_path / "empty.root"
    # All Cs137 entries lie above the 16 kNPE upper edge of the tiny binning.
    npe = {"Cs137": np.full(50, 20.0), "K40": np.random.default_rng(1).uniform(1.0, 5.0, 200)}
    write_calibration(path, npe, LAYOUT_PRESETS["tree"], spec, FileMetadata(kind="calibration", spec=spec.to_dict()))
    result = run_cli(*fit_args(fit_model, path, "--out", tmp_path / "out"))
    assert_one_line_error(result, "no entries inside", "Cs137", "50 above the range")


def test_model_of_other_spec_rejected(run_cli, fit_model, calibration_file, tmp_path):
    other = tmp_path / "default_spec.keras"
    save_regressor(build_regressor(default_spec(), TINY_MODEL), other)
    result = run_cli(
        "fit", calibration_file, "--out", tmp_path / "out", "--model", other, "--spec", fit_model["spec_file"]
    )
    assert_one_line_error(result, "800 bins from 0.4 to 16.4 kNPE")


def test_invalid_truth_rejected(run_cli, fit_model, calibration_file, tmp_path):
    result = run_cli(*fit_args(fit_model, calibration_file, "--out", tmp_path / "out", "--truth", "15,0.5"))
    assert_one_line_error(result, "invalid --truth")
