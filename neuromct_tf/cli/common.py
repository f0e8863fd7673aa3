"""Options, logging and progress bars shared by the sub-commands."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from neuromct_tf.errors import InvalidInputError
from neuromct_tf.specs import DataSpec, load_spec


@dataclass
class CLIState:
    """Global options of one invocation, set by the top-level callback."""

    verbose: bool = False
    quiet: bool = False


STATE = CLIState()

#: Console for results (standard output); logs and progress go to standard error.
STDOUT = Console(highlight=False, soft_wrap=True)
STDERR = Console(stderr=True, highlight=False)

SpecOption = typer.Option(
    None,
    "--spec",
    help="YAML data-spec file merged over the default spec (parameter box, sources, binning, grids).",
    exists=False,
    dir_okay=False,
)


# Options of the calibration input, shared by the commands that read calibration files.
SourceFilesOption = typer.Option(
    None, "--file", "-f", help="A per-source calibration file as SOURCE=PATH; repeat for each source."
)
LayoutOption = typer.Option("tree", "--layout", help="Calibration layout preset: tree, hist, juno.")
ObjectNameOption = typer.Option(
    None, "--object-name", help="TTree or TH1 name of a calibration layout; '{source}' is replaced by the source name."
)
BranchOption = typer.Option(None, "--branch", help="NPE branch of a tree layout.")
NpeUnitOption = typer.Option(None, "--npe-unit", help="Unit of the NPE values of a calibration layout: kNPE, NPE.")


def configure_logging(verbose: bool, quiet: bool) -> None:
    """Send library logs to standard error: DEBUG with ``--verbose``, WARNING with ``--quiet``, else INFO."""
    level = logging.INFO
    if verbose:
        level = logging.DEBUG
    elif quiet:
        level = logging.WARNING
    handler = RichHandler(console=STDERR, show_path=verbose, show_time=verbose, markup=False, rich_tracebacks=False)
    root = logging.getLogger("neuromct_tf")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def skip_graph_optimizer() -> None:
    """Turn off TensorFlow's graph optimizer (Grappler) in this process.

    A fit traces each of its few graphs once and runs them for seconds, so the
    optimizer's passes at the first call cost more than they save. Without
    them the default fit of 5 sources x 10k events took 12.7 s against
    13.8 s on 2 CPU cores (``benchmarks/fit_speed.py``, 3 runs of each).
    It changes a process-wide setting, so only commands that own their
    process call this.
    """
    import tensorflow as tf

    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


def read_spec(path: Optional[Path]) -> DataSpec:
    """Load the data spec named by ``--spec`` (the default spec when ``None``)."""
    return load_spec(path)


def parse_numbers(text: str, option: str, count: int, example: str) -> tuple[float, ...]:
    """Parse ``count`` comma-separated numbers given to ``option``.

    Raises InvalidInputError, with ``example`` as the fix, for any other text.
    """
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        values = ()
    if len(values) != count:
        raise InvalidInputError(f"invalid {option} {text!r}: give {count} comma-separated numbers, e.g. {example}")
    return values


def parse_point(text: str) -> tuple[float, float, float]:
    """Parse ``kB,fC,LY`` into three floats.

    Raises
    ------
    InvalidInputError
        If the text is not three comma-separated numbers.
    """
    parts = [p.strip() for p in text.split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3:
        raise InvalidInputError(f"invalid --point {text!r}: give three numbers kB,fC,LY, e.g. 15.45,0.525,10100")
    return values  # type: ignore[return-value]


def parse_sources(text: Optional[str], spec: DataSpec) -> Optional[list[str]]:
    """Parse a comma-separated source list, checking each name against the spec."""
    if text is None:
        return None
    names = [p.strip() for p in text.split(",") if p.strip()]
    if not names:
        raise InvalidInputError(f"invalid --sources {text!r}: give source names separated by commas")
    for name in names:
        spec.source_id(name)
    return names


class RateColumn(ProgressColumn):
    """Completed units per second, e.g. ``125.3k events/s``."""

    def __init__(self, unit: str):
        super().__init__()
        self.unit = unit

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text(f"-- {self.unit}/s", style="progress.data.speed")
        for factor, prefix in ((1e6, "M"), (1e3, "k"), (1.0, "")):
            if speed >= factor:
                return Text(f"{speed / factor:.1f}{prefix} {self.unit}/s", style="progress.data.speed")
        return Text(f"{speed:.2f} {self.unit}/s", style="progress.data.speed")


@contextlib.contextmanager
def progress_bar(description: str, total: int, unit: str) -> Iterator:
    """Show a progress bar on standard error (none with ``--quiet``) and yield an ``advance(n)`` function."""
    if STATE.quiet:
        yield lambda n: None
        return
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(unit),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=STDERR, transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


def parse_source_files(files: list[str]) -> dict[str, Path]:
    """Parse repeated ``--file SOURCE=PATH`` options into a mapping of source name to path."""
    inputs = {}
    for item in files:
        source, separator, file_path = item.partition("=")
        if not separator or not source or not file_path:
            raise InvalidInputError(f"invalid --file {item!r}: write it as SOURCE=PATH, e.g. Cs137=cs137.root")
        inputs[source.strip()] = Path(file_path.strip())
    return inputs
