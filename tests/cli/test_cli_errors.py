"""Command line: one-line errors with exit code 2 for every bad input, and nothing damaged on disk."""

from __future__ import annotations

import os
import subprocess
import sys

import awkward as ak
import numpy as np
import pytest
import uproot

from neuromct_tf import __version__
from neuromct_tf.cli.main import USER_ERROR_EXIT_CODE
from neuromct_tf.io.calib import layout_preset, write_calibration
from neuromct_tf.io.metadata import FileMetadata
from neuromct_tf.specs import default_spec


def assert_one_line_error(result, *fragments):
    assert result.exit_code == USER_ERROR_EXIT_CODE, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("neuromct-tf: error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.stderr


@pytest.fixture
def calib_file(tmp_path):
    spec = default_spec()
    rng = np.random.default_rng(2)
    npe = {source: rng.normal(2.0 + i, 0.1, 20000) for i, source in enumerate(spec.sources)}
    path = tmp_path / "calib.root"
    write_calibration(path, npe, layout_preset("tree"), spec, FileMetadata("calibration", spec.to_dict()))
    return path


def test_version_option(run_cli):
    result = run_cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"neuromct-tf {__version__}"


def test_help_lists_commands(run_cli):
    result = run_cli("--help")
    assert result.exit_code == 0
    for command in ("simulate", "inspect"):
        assert command in result.stdout


def test_installed_command_runs():
    executable = os.path.join(os.path.dirname(sys.executable), "neuromct-tf")
    completed = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0
    assert __version__ in completed.stdout


def test_inspect_calibration_file(run_cli, calib_file):
    result = run_cli("inspect", calib_file)
    assert result.exit_code == 0, result.stderr
    assert "Cs137" in result.stdout
    assert "20000" in result.stdout


def test_missing_file(run_cli, tmp_path):
    result = run_cli("inspect", tmp_path / "absent.root")
    assert_one_line_error(result, "absent.root", "not found")


def test_not_a_root_file(run_cli, tmp_path):
    path = tmp_path / "notes.root"
    path.write_text("these are not ROOT data\n" * 20)
    assert_one_line_error(run_cli("inspect", path), "notes.root", "is not a ROOT file")


def test_truncated_root_file(run_cli, tmp_path, calib_file):
    data = calib_file.read_bytes()
    truncated = tmp_path / "truncated.root"
    truncated.write_bytes(data[: len(data) // 2])
    assert_one_line_error(run_cli("inspect", truncated), "truncated.root", "truncated or corrupt")


def test_missing_tree_lists_contents(run_cli, calib_file):
    result = run_cli("inspect", "--file", f"Cs137={calib_file}", "--layout", "juno")
    assert_one_line_error(result, "no TTree named 'TRec'", "Cs137 (TTree)", "neuromct_metadata (TObjString)")


def test_missing_histogram_lists_contents(run_cli, calib_file):
    result = run_cli("inspect", "--file", f"Cs137={calib_file}", "--layout", "hist", "--object-name", "h_{source}")
    assert_one_line_error(result, "no TH1 named 'h_Cs137'", "K40 (TTree)")


def test_missing_branch(run_cli, calib_file):
    result = run_cli("inspect", calib_file, "--branch", "m_NPE")
    assert_one_line_error(result, "no branch 'm_NPE'", "['npe']", "--branch")


def test_wrong_branch_type(run_cli, tmp_path):
    path = tmp_path / "jagged.root"
    with uproot.recreate(path) as file:
        file.mktree("Cs137", {"npe": "var * float32"})
        file["Cs137"].extend({"npe": ak.Array([[1.0], [2.0, 3.0]])})
    assert_one_line_error(run_cli("inspect", path), "branch 'npe'", "not a flat numeric branch")


@pytest.mark.parametrize("bad, fragment", [(np.nan, "NaN"), (-0.5, "negative")])
def test_bad_npe_values(run_cli, tmp_path, bad, fragment):
    path = tmp_path / "bad.root"
    with uproot.recreate(path) as file:
        file.mktree("Co60", {"npe": np.float64})
        file["Co60"].extend({"npe": np.array([2.5, bad, 2.6])})
    assert_one_line_error(run_cli("inspect", path), "Co60", fragment)


def test_unknown_source_name(run_cli, calib_file):
    result = run_cli("inspect", "--file", f"Na22={calib_file}")
    assert_one_line_error(result, "unknown source 'Na22'", "Cs137, K40, Co60, AmBe, AmC")


def test_verbose_shows_traceback(run_cli, tmp_path):
    result = run_cli("--verbose", "inspect", tmp_path / "absent.root")
    assert result.exit_code == USER_ERROR_EXIT_CODE
    assert "Traceback" in result.stderr


def test_usage_error_exit_code(run_cli):
    result = run_cli("inspect", "--no-such-option")
    assert result.exit_code == 2


def test_inspect_plot_written(run_cli, calib_file, tmp_path):
    plot = tmp_path / "calib.png"
    result = run_cli("inspect", calib_file, "--plot", plot)
    assert result.exit_code == 0, result.stderr
    assert plot.stat().st_size > 10_000
    again = run_cli("inspect", calib_file, "--plot", plot)
    assert again.exit_code == USER_ERROR_EXIT_CODE
    assert "--overwrite" in again.stderr
