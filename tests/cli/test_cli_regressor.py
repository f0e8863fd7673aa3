"""``train-regressor`` and ``predict`` through the command line: outputs and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import uproot

from neuromct_tf.cli.main import USER_ERROR_EXIT_CODE
from neuromct_tf.models.regressor import TOKENS_LAYER, build_regressor, load_regressor, save_regressor
from neuromct_tf.sim.runner import simulate_grid
from neuromct_tf.specs import default_spec

TINY_SIZES = ["--blocks", "1", "--width", "16", "--heads", "2", "--feed-forward-width", "32", "--head-width", "64"]


def assert_user_error(result, *fragments):
    assert result.exit_code == USER_ERROR_EXIT_CODE, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("neuromct-tf: error: ")
    for fragment in fragments:
        assert fragment in last


def test_train_then_predict(run_cli, tiny_grids, tmp_path):
    out = tmp_path / "model.keras"
    result = run_cli(
        "--quiet", "train-regressor", tiny_grids["training"], "--validation", tiny_grids["validation"],
        "--out", out, "--spec", tiny_grids["spec_file"], "--epochs", "3", "--batch-size", "32", *TINY_SIZES,
        "--fourier-features", "2",
    )
    assert result.exit_code == 0, result.stderr
    assert out.exists()
    assert load_regressor(out)[0].get_layer(TOKENS_LAYER).num_frequencies == 2
    assert out.with_suffix(".csv").exists()
    assert list((tmp_path / ".neuromct-cache").glob("histograms-*.npz"))

    predicted = run_cli(
        "predict", out, "--point", "12,0.4,9000", "--sources", "Cs137,AmC", "--spec", tiny_grids["spec_file"],
        "--out", tmp_path / "spectra.root", "--plot", tmp_path / "spectra.png", "--events", "1000",
    )
    assert predicted.exit_code == 0, predicted.stderr
    with uproot.open(tmp_path / "spectra.root") as file:
        counts, edges = file["AmC"].to_numpy()
        assert "K40" not in file
    assert counts.sum() == pytest.approx(1000, rel=1e-4)
    assert len(edges) == 161
    assert (tmp_path / "spectra.png").stat().st_size > 10_000


def test_training_file_without_branches(run_cli, tiny_grids, tmp_path):
    bad = tmp_path / "bad.root"
    with uproot.recreate(bad) as file:
        file.mktree("mc", {"npe": np.float32})
        file["mc"].extend({"npe": np.ones(5, dtype=np.float32)})
    result = run_cli(
        "train-regressor", bad, "--validation", tiny_grids["validation"], "--out", tmp_path / "m.keras",
        "--spec", tiny_grids["spec_file"],
    )
    assert_user_error(result, "bad.root", "lacks the branches")


def test_grid_too_small(run_cli, tiny_grids, tmp_path):
    spec = tiny_grids["spec"]
    # One point x 5 sources = 5 spectra, fewer than the 10 needed.
    small = simulate_grid(spec, "validation", tmp_path, seed=1, num_events=20, shard=(1, 2)).paths[0]
    result = run_cli(
        "train-regressor", small, "--validation", tiny_grids["validation"], "--out", tmp_path / "m.keras",
        "--spec", tiny_grids["spec_file"],
    )
    assert_user_error(result, "5 non-empty spectra", "simulate a larger grid")


def test_validation_from_other_spec(run_cli, tiny_grids, tmp_path):
    other = simulate_grid(default_spec(), "testing2", tmp_path, seed=1, num_events=10, shard=(1, 1000)).paths[0]
    result = run_cli(
        "train-regressor", tiny_grids["training"], "--validation", other, "--out", tmp_path / "m.keras",
        "--spec", tiny_grids["spec_file"],
    )
    assert_user_error(result, "testing2", "800 bins from 0.4 to 16.4 kNPE", "160 bins from 0 to 16 kNPE")


def test_predict_point_outside_box(run_cli, tmp_path):
    path = tmp_path / "m.keras"
    save_regressor(build_regressor(default_spec(), build_tiny_config()), path)
    result = run_cli("predict", path, "--point", "15,1.5,10000", "--plot", tmp_path / "p.png")
    assert_user_error(result, "fC=1.5 is outside the parameter box [0, 1]")
    assert not (tmp_path / "p.png").exists()


def test_predict_needs_an_output(run_cli, tmp_path):
    result = run_cli("predict", tmp_path / "m.keras", "--point", "15,0.5,10000")
    assert_user_error(result, "--out", "--plot")


def test_predict_missing_model(run_cli, tmp_path):
    result = run_cli("predict", tmp_path / "absent.keras", "--point", "15,0.5,10000", "--plot", tmp_path / "p.png")
    assert_user_error(result, "absent.keras not found")


def build_tiny_config():
    from neuromct_tf.models.regressor import RegressorConfig

    return RegressorConfig(num_blocks=1, width=16, num_heads=2, feed_forward_width=32, head_width=64)


def test_evaluate_writes_outputs(run_cli, tiny_grids, tmp_path):
    spec = tiny_grids["spec"]
    model_path = tmp_path / "m.keras"
    save_regressor(build_regressor(spec, build_tiny_config()), model_path)
    result = run_cli(
        "evaluate", model_path, "--test", tiny_grids["validation"], "--training", tiny_grids["training"],
        "--out", tmp_path / "evaluation", "--spec", tiny_grids["spec_file"],
    )
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "evaluation" / "evaluation.json").exists()
    assert (tmp_path / "evaluation" / "evaluation.png").exists()
    for source in spec.sources:
        assert source in result.stdout
    assert "interpolation" in result.stdout


def test_evaluate_model_of_other_spec(run_cli, tiny_grids, tmp_path):
    model_path = tmp_path / "m.keras"
    save_regressor(build_regressor(default_spec(), build_tiny_config()), model_path)
    result = run_cli(
        "evaluate", model_path, "--test", tiny_grids["validation"], "--training", tiny_grids["training"],
        "--out", tmp_path / "evaluation", "--spec", tiny_grids["spec_file"],
    )
    assert_user_error(result, "m.keras", "800 bins")


def test_distil_from_two_teachers(run_cli, tiny_grids, tmp_path):
    spec = tiny_grids["spec"]
    teachers = []
    for index in range(2):
        path = tmp_path / f"teacher{index}.keras"
        save_regressor(build_regressor(spec, _tiny_config()), path)
        teachers += ["--teacher", path]
    out = tmp_path / "student.keras"
    result = run_cli(
        "--quiet", "train-regressor", tiny_grids["training"], "--validation", tiny_grids["validation"],
        "--out", out, "--spec", tiny_grids["spec_file"], "--epochs", "2", "--batch-size", "32",
        "--init", tmp_path / "teacher0.keras", *teachers,
    )
    assert result.exit_code == 0, result.stderr
    assert "best validation W1" in result.stdout
    assert load_regressor(out, spec)[0].count_params() == load_regressor(teachers[1], spec)[0].count_params()


def test_teacher_of_other_spec(run_cli, tiny_grids, tmp_path):
    save_regressor(build_regressor(default_spec(), _tiny_config()), tmp_path / "wide.keras")
    result = run_cli(
        "train-regressor", tiny_grids["training"], "--validation", tiny_grids["validation"],
        "--out", tmp_path / "m.keras", "--spec", tiny_grids["spec_file"], "--teacher", tmp_path / "wide.keras",
    )
    assert_user_error(result, "wide.keras", "800 bins from 0.4 to 16.4 kNPE")
    assert not (tmp_path / "m.keras").exists()


def test_init_from_an_ensemble(run_cli, tiny_grids, tmp_path):
    from neuromct_tf.models.regressor import build_ensemble

    spec = tiny_grids["spec"]
    members = [build_regressor(spec, _tiny_config()) for _ in range(2)]
    save_regressor(build_ensemble(members), tmp_path / "ensemble.keras")
    result = run_cli(
        "train-regressor", tiny_grids["training"], "--validation", tiny_grids["validation"],
        "--out", tmp_path / "m.keras", "--spec", tiny_grids["spec_file"], "--init", tmp_path / "ensemble.keras",
    )
    assert_user_error(result, "ensemble.keras is an ensemble", "--teacher")
    assert not (tmp_path / "m.keras").exists()


def _tiny_config():
    from neuromct_tf.models.regressor import RegressorConfig

    return RegressorConfig(num_blocks=1, width=16, num_heads=2, feed_forward_width=32, head_width=64, num_frequencies=0)


@pytest.mark.parametrize("option", ["--teacher", "--init"])
def test_model_options_reject_bad_files(run_cli, tiny_grids, tmp_path, option):
    from neuromct_tf.models.bundled import default_gan_path

    text = tmp_path / "notes.keras"
    text.write_text("not a model\n")
    cases = [
        (tmp_path / "missing.keras", "missing.keras not found"),
        (text, "notes.keras is not a Keras model file"),
        (default_gan_path(), "is a GAN generator, not a regressor"),
    ]
    for path, fragment in cases:
        result = run_cli(
            "train-regressor", tiny_grids["training"], "--validation", tiny_grids["validation"],
            "--out", tmp_path / "m.keras", "--spec", tiny_grids["spec_file"], option, path,
        )
        assert_user_error(result, fragment)
    assert not (tmp_path / "m.keras").exists()
