"""``neuromct-tf train-gan`` and ``neuromct-tf generate``: the conditional WGAN-GP event generator."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from neuromct_tf.cli.common import STATE, STDERR, STDOUT, SpecOption, parse_point, parse_sources, progress_bar, read_spec
from neuromct_tf.errors import InvalidInputError


def train_gan(
    train_files: list[Path] = typer.Argument(..., metavar="TRAIN.root...", help="MC grid files of the training grid."),
    validation: list[Path] = typer.Option(
        ..., "--validation", help="MC grid file of the validation grid; repeat for several shards."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output .keras file of the best generator."),
    epochs: int = typer.Option(60, "--epochs", min=1, help="Maximum number of epochs."),
    steps_per_epoch: int = typer.Option(250, "--steps-per-epoch", min=1, help="Generator steps per epoch."),
    batch_size: int = typer.Option(
        4096, "--batch-size", min=1, help="Real events per critic step; a multiple of --set-size."
    ),
    critic_steps: int = typer.Option(5, "--critic-steps", min=1, help="Critic steps per generator step."),
    gradient_penalty: float = typer.Option(10.0, "--gradient-penalty", min=0.0, help="Weight lambda of the gradient penalty."),
    generator_learning_rate: float = typer.Option(
        5e-4, "--generator-learning-rate", min=0.0, help="Initial learning rate of the generator's Adam."
    ),
    critic_learning_rate: float = typer.Option(
        5e-4, "--critic-learning-rate", min=0.0, help="Initial learning rate of the critic's Adam."
    ),
    beta_1: float = typer.Option(0.0, "--beta1", min=0.0, max=1.0, help="Adam's first-moment decay rate."),
    beta_2: float = typer.Option(0.9, "--beta2", min=0.0, max=1.0, help="Adam's second-moment decay rate."),
    events_per_block: int = typer.Option(
        512, "--events-per-block", min=1, help="Training triggers kept per (point, source), drawn once with --seed."
    ),
    set_size: int = typer.Option(
        64, "--set-size", min=1, help="Events of one condition that the critic judges together (1: single events)."
    ),
    noise_dim: int = typer.Option(8, "--noise-dim", min=1, help="Dimension of the generator's standard-normal noise."),
    condition_width: int = typer.Option(32, "--condition-width", min=1, help="Features of the condition embedding."),
    generator_width: int = typer.Option(128, "--generator-width", min=1, help="Units of each hidden generator layer."),
    generator_layers: int = typer.Option(3, "--generator-layers", min=1, help="Hidden generator layers."),
    critic_width: int = typer.Option(256, "--critic-width", min=1, help="Units of each hidden critic layer."),
    critic_layers: int = typer.Option(3, "--critic-layers", min=1, help="Hidden critic layers."),
    validation_points: int = typer.Option(
        100, "--validation-points", min=1, help="Validation points scored after each epoch, drawn once with --seed."
    ),
    validation_events: int = typer.Option(
        10_000, "--validation-events", min=1, help="Generated events per validation spectrum."
    ),
    patience: int = typer.Option(1000, "--patience", min=1, help="Stop after this many epochs without a better validation W1."),
    seed: int = typer.Option(0, "--seed", help="Seed of the subsample, the initialisation, the training draws and the validation noise."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its last checkpoint."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output model."),
    spec_file: Optional[Path] = SpecOption,
) -> None:
    """Train the conditional WGAN-GP event generator on per-event NPE of an MC grid.

    The training files are streamed once, keeping --events-per-block random
    triggers of every (point, source). The subsample and the validation
    histograms are cached in .neuromct-cache next to the output. The best
    generator (lowest validation Wasserstein-1 distance of the binned spectra)
    is written to OUT after every improvement. A checkpoint is written after
    every epoch, and a CSV log to OUT with the suffix .csv.
    """
    from neuromct_tf.data.events import read_event_sets
    from neuromct_tf.data.histograms import build_grid_histograms, cache_directory_for
    from neuromct_tf.io.atomic import check_output_path
    from neuromct_tf.io.mcgrid import open_mc_grid
    from neuromct_tf.models.gan import GanConfig
    from neuromct_tf.training.gan import GanTrainingConfig
    from neuromct_tf.training.gan import train_gan as run_training

    spec = read_spec(spec_file)
    if out.suffix != ".keras":
        raise InvalidInputError(f"output {out} must end in .keras; Keras 3 saves models in that format")
    if not resume:
        check_output_path(out, overwrite)
    model_config = GanConfig(
        noise_dim=noise_dim, condition_width=condition_width, generator_width=generator_width,
        generator_layers=generator_layers, critic_width=critic_width, critic_layers=critic_layers, set_size=set_size,
    )
    config = GanTrainingConfig(
        epochs=epochs, steps_per_epoch=steps_per_epoch, batch_size=batch_size, critic_steps=critic_steps,
        gradient_penalty=gradient_penalty, generator_learning_rate=generator_learning_rate,
        critic_learning_rate=critic_learning_rate, beta_1=beta_1, beta_2=beta_2,
        validation_points=validation_points, validation_events=validation_events, patience=patience, seed=seed,
    )
    cache = cache_directory_for(out)
    # Every file is opened and checked against the spec before the long pass over the training files.
    train_total = sum(open_mc_grid(path, spec)[1].num_entries for path in train_files)
    validation_total = sum(open_mc_grid(path, spec)[1].num_entries for path in validation)
    with progress_bar("subsample training files", train_total, "entries") as advance:
        train = read_event_sets(train_files, spec, events_per_block, seed=seed, cache_dir=cache, progress_fn=advance)
    with progress_bar("histogram validation files", validation_total, "entries") as advance:
        valid = build_grid_histograms(validation, spec, cache_dir=cache, progress_fn=advance)

    with progress_bar("train", epochs, "epochs") as advance:
        def report(record):
            advance(1)
            if not STATE.quiet:
                mark = " *" if record.improved else ""
                STDERR.print(
                    f"epoch {record.epoch:4d}  critic {record.critic_loss:+.4f}  generator {record.generator_loss:+.4f}"
                    f"  W estimate {record.wasserstein_estimate:.4f}  validation W1 {record.validation_w1:.5f} kNPE"
                    f"  {record.seconds:.1f} s{mark}"
                )

        summary = run_training(
            train, valid, spec, out, model_config, config, resume=resume, overwrite=overwrite, epoch_fn=report
        )
    STDOUT.print(
        f"wrote {summary.output}: best validation W1 {summary.best_validation_w1:.5f} kNPE at epoch "
        f"{summary.best_epoch} of {summary.epochs_run}{' (early stop)' if summary.stopped_early else ''}, "
        f"{summary.num_generator_weights:,} generator weights, {summary.wall_seconds:.0f} s"
    )


def generate(
    model_path: Optional[Path] = typer.Argument(
        None, metavar="[MODEL]", help="Generator .keras file; the bundled default GAN when omitted."
    ),
    point: str = typer.Option(..., "--point", help="Parameter point as kB,fC,LY (g/cm2/GeV, dimensionless, photons/MeV)."),
    events: int = typer.Option(..., "--events", help="Events generated per source."),
    sources: Optional[str] = typer.Option(None, "--sources", help="Comma-separated sources (default: all)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output MC grid file (ROOT), readable like a simulated one."),
    seed: int = typer.Option(0, "--seed", help="Seed of the noise; the same seed gives a byte-identical file."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
    spec_file: Optional[Path] = SpecOption,
) -> None:
    """Generate the NPE of events of the sources at one parameter point with a GAN generator.

    The file has the MC grid layout of 'neuromct-tf simulate' (tree 'mc', one
    point with index 0), so every reader of simulated files reads it. All
    events are written as prompt triggers (trigger = 0), because the generator
    models the charge of prompt and delayed triggers together.
    """
    from neuromct_tf.io.atomic import check_output_path
    from neuromct_tf.models.bundled import default_gan_path
    from neuromct_tf.models.gan import load_generator
    from neuromct_tf.models.generation import write_generated_events

    spec = read_spec(spec_file)
    values = spec.check_point(parse_point(point))
    if events < 1:
        raise InvalidInputError(f"invalid --events {events}: give a positive number of events per source")
    names = parse_sources(sources, spec) or list(spec.sources)
    check_output_path(out, overwrite)
    path = default_gan_path() if model_path is None else model_path
    generator, _ = load_generator(path, spec)
    with progress_bar("generate", events * len(names), "events") as advance:
        written = write_generated_events(
            generator, spec, values, names, events, out, seed=seed, overwrite=overwrite, progress_fn=advance,
            model_name=Path(path).name,
        )
    STDOUT.print(f"wrote {written.path}: {written.num_entries:,} events of {', '.join(names)} at {point} from {path}")
