"""Atomic output: write to a temporary file next to the target, then rename.

An interrupted run therefore never leaves a half-written file under the final
name, and an existing file is only replaced once the new one is complete.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from neuromct_tf.errors import OutputError


def check_output_path(path: str | Path, overwrite: bool) -> Path:
    """Check that ``path`` may be written and return it as a :class:`~pathlib.Path`.

    Raises
    ------
    OutputError
        If the file exists and ``overwrite`` is false, if it is a directory, or if
        its directory does not exist or is not writable.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"output {path} is a directory; give a file name")
    if path.exists() and not overwrite:
        raise OutputError(f"output {path} already exists; pass --overwrite to replace it")
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise OutputError(f"output directory {directory} does not exist; create it first")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputError(f"output directory {directory} is not writable; choose another --out")
    return path


@contextlib.contextmanager
def atomic_output(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path in the directory of ``path``; rename it to ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left as it
    was. The temporary name starts with a dot and ends with ``.part``.

    Raises
    ------
    OutputError
        As :func:`check_output_path`.
    """
    path = check_output_path(path, overwrite)
    try:
        handle, temporary = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".part", dir=path.parent if str(path.parent) else "."
        )
    except OSError as error:
        raise OutputError(f"cannot create a file in {path.parent}: {error.strerror}; choose another --out") from None
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        # mkstemp creates the file readable by its owner only; give it the usual umask-based mode.
        os.chmod(temporary_path, 0o666 & ~_current_umask())
        os.replace(temporary_path, path)
    finally:
        temporary_path.unlink(missing_ok=True)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
