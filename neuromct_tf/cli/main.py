"""Entry point of the ``neuromct-tf`` command."""

from __future__ import annotations

import sys
import traceback
from typing import Optional

import typer

from neuromct_tf._version import __version__
from neuromct_tf.cli import evaluate as evaluate_command
from neuromct_tf.cli import fit as fit_command
from neuromct_tf.cli import gan as gan_command
from neuromct_tf.cli import inspect as inspect_command
from neuromct_tf.cli import regressor as regressor_command
from neuromct_tf.cli import simulate as simulate_command
from neuromct_tf.cli import validate as validate_command
from neuromct_tf.cli.common import STATE, configure_logging
from neuromct_tf.errors import NeuroMCTError

#: Exit code of every user error (bad input, spec mismatch, unwritable output), as click uses for usage errors.
USER_ERROR_EXIT_CODE = 2

app = typer.Typer(
    name="neuromct-tf",
    help=(
        "Fast Monte Carlo tuning of the energy response of a liquid-scintillator detector: "
        "simulate calibration spectra, train neural surrogates and fit Birks' constant kB, "
        "the Cherenkov factor fC and the light yield LY."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"neuromct-tf {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages and show tracebacks of errors."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Log warnings and errors only, and hide progress bars."),
) -> None:
    """Set the global options shared by every sub-command."""
    STATE.verbose = verbose
    STATE.quiet = quiet and not verbose
    configure_logging(STATE.verbose, STATE.quiet)


app.command("simulate")(simulate_command.simulate)
app.command("inspect")(inspect_command.inspect_files)
app.command("train-regressor")(regressor_command.train_regressor)
app.command("evaluate")(evaluate_command.evaluate)
app.command("predict")(regressor_command.predict)
app.command("fit")(fit_command.fit)
app.add_typer(validate_command.app, name="validate")
app.command("train-gan")(gan_command.train_gan)
app.command("generate")(gan_command.generate)


def main(argv: Optional[list[str]] = None) -> int:
    """Run the command line ``argv`` (``sys.argv[1:]`` by default) and return the exit code.

    A :class:`~neuromct_tf.errors.NeuroMCTError` is printed as one line on
    standard error with exit code 2; its traceback only with ``--verbose``.
    """
    STATE.verbose = False
    STATE.quiet = False
    arguments = sys.argv[1:] if argv is None else argv
    command = typer.main.get_command(app)
    try:
        result = command.main(args=arguments, prog_name="neuromct-tf", standalone_mode=False)
    except NeuroMCTError as error:
        if STATE.verbose:
            traceback.print_exc()
        print(f"neuromct-tf: error: {error}", file=sys.stderr)
        return USER_ERROR_EXIT_CODE
    except typer.Exit as exit_request:
        return exit_request.exit_code
    except typer.Abort:
        print("neuromct-tf: aborted", file=sys.stderr)
        return 130
    except typer.TyperException as error:
        # Usage errors (unknown option, missing argument): click prints them with the usage line.
        error.show()
        return error.exit_code
    except KeyboardInterrupt:
        print("neuromct-tf: interrupted; outputs of the interrupted step were not written", file=sys.stderr)
        return 130
    # With standalone_mode=False click returns the exit code of --help and --version as an int.
    return result if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry point: run :func:`main` and exit with its code."""
    sys.exit(main())


#: The click command behind ``app``, for the generated CLI reference of the docs.
cli_command = typer.main.get_command(app)
