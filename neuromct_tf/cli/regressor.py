"""``neuromct-tf train-regressor`` and ``neuromct-tf predict``: the Transformer regressor."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from neuromct_tf.cli.common import STATE, STDERR, STDOUT, SpecOption, parse_point, parse_sources, progress_bar, read_spec
from neuromct_tf.errors import InvalidInputError


def train_regressor(
    train_files: list[Path] = typer.Argument(..., metavar="TRAIN.root...", help="MC grid files of the training grid."),
    validation: list[Path] = typer.Option(
        ..., "--validation", help="MC grid file of the validation grid; repeat for several shards."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output .keras file of the best model."),
    epochs: int = typer.Option(300, "--epochs", min=1, help="Maximum number of epochs."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Spectra per gradient step."),
    learning_rate: float = typer.Option(1e-3, "--learning-rate", min=0.0, help="Peak learning rate of AdamW."),
    weight_decay: float = typer.Option(1e-4, "--weight-decay", min=0.0, help="Decoupled weight decay of AdamW."),
    warmup_epochs: int = typer.Option(5, "--warmup-epochs", min=0, help="Epochs of linear learning-rate warm-up."),
    patience: int = typer.Option(30, "--patience", min=1, help="Stop after this many epochs without a better validation W1."),
    num_blocks: int = typer.Option(4, "--blocks", min=1, help="Transformer blocks."),
    width: int = typer.Option(64, "--width", min=1, help="Features per token."),
    num_heads: int = typer.Option(8, "--heads", min=1, help="Attention heads (must divide --width)."),
    feed_forward_width: int = typer.Option(128, "--feed-forward-width", min=1, help="Hidden features of each block's feed-forward layer."),
    head_width: int = typer.Option(1000, "--head-width", min=1, help="Hidden features of the output head."),
    tokens_per_parameter: int = typer.Option(1, "--tokens-per-parameter", min=1, help="Tokens of each parameter."),
    num_frequencies: int = typer.Option(
        4, "--fourier-features", min=0,
        help="Octaves of sine and cosine features of each scaled parameter added to its tokens (0 turns them off).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of initialisation, shuffling and Poisson noise."),
    poisson_noise: bool = typer.Option(
        True, "--poisson-noise/--no-poisson-noise",
        help="Draw fresh Poisson fluctuations of the training spectra at every step, or fit the simulated spectra as they are.",
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its last checkpoint."),
    initial_model: Optional[Path] = typer.Option(
        None, "--init", metavar="MODEL.keras",
        help="Start from the weights of this regressor (fine-tuning with a new learning-rate schedule); "
        "its sizes replace --blocks, --width and the other size options. Ignored with --resume.",
    ),
    teachers: Optional[list[Path]] = typer.Option(
        None, "--teacher", metavar="MODEL.keras",
        help="Distil: fit the mean probabilities of these regressors at random points of the parameter box, in "
        "place of the training spectra. Repeat the option for several seeds, which form an ensemble, or give a "
        "saved ensemble once. Usually with --init.",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output model."),
    spec_file: Optional[Path] = SpecOption,
) -> None:
    """Train the Transformer regressor on binned spectra of an MC grid.

    The MC grid files are histogrammed once in the spec's binning. The
    histograms are cached in .neuromct-cache next to the output, keyed by the
    input files, so a second run skips the ROOT pass. The best model (lowest
    validation Wasserstein-1 distance) is written to OUT after every
    improvement. A checkpoint is written after every epoch, and a CSV log to
    OUT with the suffix .csv.

    With --teacher the model learns the mean of the teachers' probabilities
    (an ensemble) instead of the simulated spectra: one model as accurate as
    the ensemble, at the cost of one. The validation grid still selects the
    best epoch.
    """
    from neuromct_tf.data.histograms import build_grid_histograms, cache_directory_for
    from neuromct_tf.io.atomic import check_output_path
    from neuromct_tf.models.regressor import RegressorConfig, build_ensemble, load_regressor
    from neuromct_tf.training.regressor import TrainingConfig, load_initial_model, train_regressor as run_training

    spec = read_spec(spec_file)
    if out.suffix != ".keras":
        raise InvalidInputError(f"output {out} must end in .keras; Keras 3 saves models in that format")
    if not resume:
        check_output_path(out, overwrite)
    if initial_model is not None and not resume:
        # Check the file before the histogramming pass, which takes minutes on a full grid.
        load_initial_model(initial_model, spec)
    teacher = None
    if teachers:
        loaded = [load_regressor(path, spec)[0] for path in teachers]
        teacher = loaded[0] if len(loaded) == 1 else build_ensemble(loaded, [str(path) for path in teachers])
    cache = cache_directory_for(out)
    train = _histograms(build_grid_histograms, train_files, spec, cache, "histogram training files")
    valid = _histograms(build_grid_histograms, validation, spec, cache, "histogram validation files")
    model_config = RegressorConfig(
        num_blocks=num_blocks, width=width, num_heads=num_heads, feed_forward_width=feed_forward_width,
        head_width=head_width, tokens_per_parameter=tokens_per_parameter, num_frequencies=num_frequencies,
    )
    config = TrainingConfig(
        epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, weight_decay=weight_decay,
        warmup_epochs=warmup_epochs, patience=patience, seed=seed, poisson_noise=poisson_noise,
    )
    with progress_bar("train", epochs, "epochs") as advance:
        def report(record):
            advance(1)
            if not STATE.quiet:
                mark = " *" if record.improved else ""
                STDERR.print(
                    f"epoch {record.epoch:4d}  loss {record.loss:.5f}  validation W1 {record.validation_w1:.5f} kNPE"
                    f"  lr {record.learning_rate:.2e}  {record.seconds:.1f} s{mark}"
                )

        summary = run_training(
            train, valid, spec, out, model_config, config, resume=resume, overwrite=overwrite, epoch_fn=report,
            initial_model=initial_model, teacher=teacher,
        )
    STDOUT.print(
        f"wrote {summary.output}: best validation W1 {summary.best_validation_w1:.5f} kNPE at epoch "
        f"{summary.best_epoch} of {summary.epochs_run}{' (early stop)' if summary.stopped_early else ''}, "
        f"{summary.num_weights:,} weights, {summary.wall_seconds:.0f} s"
    )


def _histograms(build, paths, spec, cache, description):
    from neuromct_tf.io.mcgrid import open_mc_grid

    total = sum(open_mc_grid(path, spec)[1].num_entries for path in paths)
    with progress_bar(description, total, "entries") as advance:
        return build(paths, spec, cache_dir=cache, progress_fn=advance)


def predict(
    model_path: Optional[Path] = typer.Argument(
        None, metavar="[MODEL]", help="Regressor .keras file; the bundled default model when omitted."
    ),
    point: str = typer.Option(..., "--point", help="Parameter point as kB,fC,LY (g/cm2/GeV, dimensionless, photons/MeV)."),
    sources: Optional[str] = typer.Option(None, "--sources", help="Comma-separated sources (default: all)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="ROOT file with one TH1D per source."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="PNG file with the spectra of all sources."),
    events: Optional[int] = typer.Option(
        None, "--events", min=1, help="Scale each TH1D to this many expected entries (default: probabilities)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    spec_file: Optional[Path] = SpecOption,
) -> None:
    """Predict the NPE spectra of the sources at one parameter point with a regressor."""
    from neuromct_tf.io.atomic import check_output_path
    from neuromct_tf.models.bundled import resolve_model_path
    from neuromct_tf.models.regressor import load_regressor
    from neuromct_tf.models.prediction import predict_point, write_prediction

    if out is None and plot is None:
        raise InvalidInputError("give --out FILE.root and/or --plot FILE.png for the predicted spectra")
    spec = read_spec(spec_file)
    values = spec.check_point(parse_point(point))
    names = parse_sources(sources, spec) or list(spec.sources)
    for path in (out, plot):
        if path is not None:
            check_output_path(path, overwrite)
    path = resolve_model_path(model_path)
    model, _ = load_regressor(path, spec)
    prediction = predict_point(model, spec, values, names)
    for written in write_prediction(prediction, spec, root_path=out, png_path=plot, events=events, overwrite=overwrite):
        STDOUT.print(f"wrote {written}")
