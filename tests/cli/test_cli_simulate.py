"""``neuromct-tf simulate`` through the command line: outputs, summaries and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import uproot

from neuromct_tf.cli.main import USER_ERROR_EXIT_CODE


def test_simulate_calib_then_inspect(run_cli, tmp_path):
    out = tmp_path / "calib.root"
    result = run_cli("--quiet", "simulate", "calib", "--point", "12,0.3,9500", "--events", "200",
                     "--sources", "Cs137,AmBe", "--out", out, "--seed", "4")
    assert result.exit_code == 0, result.stderr
    assert f"wrote {out}" in result.stdout
    with uproot.open(out) as file:
        assert file["Cs137"].num_entries == 200
        assert file["AmBe"].num_entries == 400
        assert "K40" not in file
    inspected = run_cli("inspect", out)
    assert inspected.exit_code == 0, inspected.stderr
    assert "sources not found: K40, Co60, AmC" in inspected.stdout


def test_simulate_calib_juno_layout(run_cli, tmp_path):
    out = tmp_path / "run.root"
    result = run_cli("--quiet", "simulate", "calib", "--point", "15.45,0.525,10100", "--events", "100",
                     "--sources", "K40", "--layout", "juno", "--out", out)
    assert result.exit_code == 0, result.stderr
    with uproot.open(tmp_path / "run_K40.root") as file:
        npe = file["TRec"]["m_NPE"].array(library="np")
    # m_NPE is in photo-electrons: the K40 peak sits near 2300, far above 1.
    assert np.median(npe) > 500


def test_simulate_grid_with_spec(run_cli, tmp_path, tiny_spec_file):
    result = run_cli("--quiet", "simulate", "testing2", "--spec", tiny_spec_file, "--out", tmp_path / "grids")
    assert result.exit_code == 0, result.stderr
    with uproot.open(tmp_path / "grids" / "testing2.root") as file:
        tree = file["mc"]
        point = tree["point"].array(library="np")
        source = tree["source"].array(library="np")
    # Exposures 100 and 200 decays, 2 datasets each: Cs137 gets 100 + 100 + 200 + 200 triggers.
    assert np.count_nonzero(source == 0) == 600
    np.testing.assert_array_equal(np.unique(point), [0, 1, 2, 3])


def run_expect_error(run_cli, tmp_path, *args, fragment):
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run_cli("simulate", *args)
    assert result.exit_code == USER_ERROR_EXIT_CODE, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert fragment in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "an output was written despite the error"


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("nonsense", "--out", "x"), "unknown grid 'nonsense'"),
        (("calib", "--point", "30,0.5,10000", "--events", "10", "--out", "c.root"), "kB=30 is outside"),
        (("calib", "--point", "15,0.5", "--events", "10", "--out", "c.root"), "three numbers"),
        (("calib", "--point", "15,0.5,10000", "--events", "0", "--out", "c.root"), "invalid --events 0"),
        (("calib", "--point", "15,0.5,10000", "--events", "-3", "--out", "c.root"), "invalid --events -3"),
        (("calib", "--point", "15,0.5,10000", "--events", "5", "--sources", "Na22", "--out", "c.root"),
         "unknown source 'Na22'"),
        (("calib", "--point", "15,0.5,10000", "--events", "5", "--layout", "xml", "--out", "c.root"),
         "unknown layout 'xml'"),
        (("validation", "--shard", "3/2", "--out", "grids"), "invalid shard '3/2'"),
        (("validation", "--shard", "one/two", "--out", "grids"), "invalid shard"),
    ],
)
def test_bad_simulate_input(run_cli, tmp_path, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    run_expect_error(run_cli, tmp_path, *args, fragment=fragment)


def test_existing_output_kept(run_cli, tmp_path):
    out = tmp_path / "calib.root"
    out.write_bytes(b"precious")
    result = run_cli("simulate", "calib", "--point", "15,0.5,10000", "--events", "5", "--out", out)
    assert result.exit_code == USER_ERROR_EXIT_CODE
    assert "already exists; pass --overwrite" in result.stderr
    assert out.read_bytes() == b"precious"


def test_unwritable_output_directory(run_cli, tmp_path):
    # /proc accepts no new files even for root, who bypasses permission bits.
    result = run_cli("simulate", "calib", "--point", "15,0.5,10000", "--events", "5", "--out", "/proc/calib.root")
    assert result.exit_code == USER_ERROR_EXIT_CODE
    assert "/proc" in result.stderr
    missing = run_cli("simulate", "calib", "--point", "15,0.5,10000", "--events", "5",
                      "--out", tmp_path / "no" / "such" / "calib.root")
    assert missing.exit_code == USER_ERROR_EXIT_CODE
    assert "does not exist" in missing.stderr
