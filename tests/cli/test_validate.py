"""``neuromct-tf validate exposure`` and ``validate grid`` end to end, and their one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import uproot

from neuromct_tf.models.bundled import default_regressor_path


def validate_args(model, command, out, *args):
    return ["--quiet", "validate", command, "--out", out, "--model", model["path"], "--spec", model["spec_file"], *args]


def test_exposure_writes_outputs(run_cli, validation_model, tmp_path):
    out = tmp_path / "exposure"
    result = run_cli(*validate_args(validation_model, "exposure", out, "--datasets", 3, "--fisher-events", 1000,
                                    "--chunk-size", 2, "--seed", 1))
    assert result.exit_code == 0, result.stderr
    for name in ("exposure_fits.root", "exposure_summary.json", "exposure_study.png"):
        assert (out / name).is_file(), name
    assert (out / "exposure_study.png").read_bytes()[:4] == b"\x89PNG"
    with uproot.open(out / "exposure_fits.root") as file:
        assert file.classname_of("fits") == "TTree"
        assert file["fits"].num_entries == 6
        assert file["statistics"].num_entries == 6
    summary = json.loads((out / "exposure_summary.json").read_text())
    assert summary["exposures"] == [100, 200]
    assert summary["settings"]["seed"] == 1
    assert set(summary["cramer_rao"]["bounds"]["200"]["crb"]) == {"kB", "fC", "LY"}
    assert "Cramér–Rao bounds" in result.stdout
    assert "pull width" in result.stdout


def test_exposure_rerun_resumes_chunks(run_cli, validation_model, tmp_path):
    out = tmp_path / "resume"
    first = run_cli(*validate_args(validation_model, "exposure", out, "--datasets", 2, "--fisher-events", 0,
                                   "--exposures", "200", "--pseudo-data", "surrogate"))
    assert first.exit_code == 0, first.stderr
    fits = uproot.open(out / "exposure_fits.root")["fits"].arrays(["kB", "fC", "LY"], library="np")
    for name in ("exposure_fits.root", "exposure_summary.json", "exposure_study.png"):
        (out / name).unlink()
    second = run_cli(*validate_args(validation_model, "exposure", out, "--datasets", 2, "--fisher-events", 0,
                                    "--exposures", "200", "--pseudo-data", "surrogate"))
    assert second.exit_code == 0, second.stderr
    again = uproot.open(out / "exposure_fits.root")["fits"].arrays(["kB", "fC", "LY"], library="np")
    for name in ("kB", "fC", "LY"):
        assert np.array_equal(fits[name], again[name])


def test_grid_writes_outputs(run_cli, validation_model, tmp_path):
    out = tmp_path / "grid"
    result = run_cli(*validate_args(validation_model, "grid", out, "--points", 2, "--datasets", 2, "--exposure", 2000,
                                    "--pseudo-data", "surrogate"))
    assert result.exit_code == 0, result.stderr
    for name in ("grid_fits.root", "grid_summary.json", "grid_bias.png"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "grid_summary.json").read_text())
    assert len(summary["points"]) == 2
    assert set(summary["overview"]) == {"kB", "fC", "LY"}
    with uproot.open(out / "grid_fits.root") as file:
        assert file["fits"].num_entries == 4
        assert set(file["fits"]["point_index"].array(library="np")) == {p["point_index"] for p in summary["points"]}


@pytest.mark.parametrize(
    "command, args, message",
    [
        ("exposure", ["--exposures", "1234"], "unknown exposure 1234"),
        ("exposure", ["--datasets", "0"], "invalid number of datasets 0"),
        ("exposure", ["--exposures", "ten"], "invalid --exposures"),
        ("exposure", ["--pseudo-data", "toy"], "unknown pseudo-data"),
        ("grid", ["--points", "0"], "invalid number of grid points 0"),
        ("grid", ["--grid", "testing2"], "not a product grid"),
    ],
)
def test_bad_input_one_line_error(run_cli, validation_model, tmp_path, command, args, message):
    result = run_cli(*validate_args(validation_model, command, tmp_path / "out", *args))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("neuromct-tf: error:")
    assert message in lines[0]


def test_existing_output_needs_overwrite(run_cli, validation_model, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "exposure_summary.json").write_text("{}")
    result = run_cli(*validate_args(validation_model, "exposure", out, "--datasets", 2, "--fisher-events", 0))
    assert result.exit_code == 2
    assert "already exists" in result.stderr
    assert "--overwrite" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_model_of_other_spec_rejected(run_cli, validation_model, tmp_path):
    # The bundled model was made for the default spec, whose binning differs from the tiny spec's.
    result = run_cli(
        "--quiet", "validate", "exposure", "--out", tmp_path / "out", "--model", default_regressor_path(),
        "--spec", validation_model["spec_file"], "--datasets", 2,
    )
    assert result.exit_code == 2
    assert "binning" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_exposure_with_hmc(run_cli, validation_model, tmp_path):
    out = tmp_path / "hmc"
    result = run_cli(*validate_args(validation_model, "exposure", out, "--datasets", 3, "--fisher-events", 0,
                                    "--exposures", "200", "--pseudo-data", "surrogate", "--method", "hmc",
                                    "--chains", 2, "--samples", 10))
    assert result.exit_code == 0, result.stderr
    summary = json.loads((out / "exposure_summary.json").read_text())
    assert summary["settings"]["method"] == "hmc"
    assert summary["settings"]["num_chains"] == 2
    with uproot.open(out / "exposure_fits.root") as file:
        assert file["fits"].num_entries == 3


def test_unknown_method_rejected(run_cli, validation_model, tmp_path):
    result = run_cli(*validate_args(validation_model, "exposure", tmp_path / "bad", "--method", "nuts"))
    assert result.exit_code == 2
    assert "unknown fit method 'nuts'" in result.stderr
