"""Opening ROOT files and reading their objects with errors that name the file and object.

uproot raises a variety of low-level exceptions for a missing, foreign or
truncated file. The helpers here turn them into
:class:`~neuromct_tf.errors.InvalidInputError` with a message that names the problem
and lists what the file contains.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
import os
import sys
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import uproot

from neuromct_tf.errors import InvalidInputError

# Exceptions uproot raises while decoding a damaged or truncated file (uproot 5.7).
READ_ERRORS = (OSError, ValueError, EOFError, zlib.error, uproot.deserialization.DeserializationError)


def open_root(path: str | Path) -> uproot.ReadOnlyDirectory:
    """Open a ROOT file for reading.

    Raises
    ------
    InvalidInputError
        If the file is missing, is not a ROOT file or cannot be read.
    """
    path = Path(path)
    if not path.exists():
        raise InvalidInputError(f"file {path} not found; check the path")
    if path.is_dir():
        raise InvalidInputError(f"{path} is a directory; give a ROOT file")
    try:
        return uproot.open(path)
    except ValueError as error:
        if "not a ROOT file" in str(error):
            raise InvalidInputError(f"{path} is not a ROOT file; give a file written by ROOT or uproot") from None
        raise InvalidInputError(f"{path} cannot be read as a ROOT file ({_first_line(error)}); it may be truncated or corrupt") from None
    except READ_ERRORS as error:
        raise InvalidInputError(f"{path} cannot be read as a ROOT file ({_first_line(error)}); it may be truncated or corrupt") from None


def describe_contents(directory: uproot.ReadOnlyDirectory) -> str:
    """Return the top-level objects of a file as ``name (Class), ...``, for error messages."""
    try:
        items = directory.classnames(recursive=False, cycle=False)
    except READ_ERRORS:
        return "(the directory cannot be read)"
    if not items:
        return "(no objects)"
    return ", ".join(f"{name} ({classname})" for name, classname in sorted(items.items()))


def get_object(directory: uproot.ReadOnlyDirectory, name: str, kind: str, path: str | Path):
    """Return the object ``name`` of a file, checking that its class starts with ``kind``.

    Parameters
    ----------
    directory : uproot.ReadOnlyDirectory
        The open file.
    name : str
        Object name, without cycle.
    kind : str
        Expected class prefix, ``TTree`` or ``TH1``.
    path : str or pathlib.Path
        File path, for messages.

    Raises
    ------
    InvalidInputError
        If the object is missing or of another class; the message lists what the file holds.
    """
    classnames = directory.classnames(recursive=False, cycle=False)
    if name not in classnames:
        raise InvalidInputError(
            f"file {path} has no {kind} named {name!r}; it contains: {describe_contents(directory)}. "
            "Set the object name with the layout options"
        )
    if not classnames[name].startswith(kind):
        raise InvalidInputError(
            f"object {name!r} in file {path} is a {classnames[name]}, not a {kind}; "
            "choose the layout that matches the file"
        )
    with reading(path, name):
        return directory[name]


@contextlib.contextmanager
def reading(path: str | Path, what: str) -> Iterator[None]:
    """Turn low-level read errors inside the block into :class:`InvalidInputError`."""
    try:
        yield
    except InvalidInputError:
        raise
    except READ_ERRORS as error:
        raise InvalidInputError(
            f"cannot read {what} from {path} ({_first_line(error)}); the file may be truncated or corrupt"
        ) from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class _FixedClock(datetime.datetime):
    """A ``datetime`` whose ``now()`` is fixed, so that written files are byte-for-byte reproducible."""

    fixed: datetime.datetime = datetime.datetime(2000, 1, 1)

    @classmethod
    def now(cls, tz=None):
        return cls.fixed


class _ClockShim:
    """Stands in for the ``datetime`` module inside uproot's writing modules."""

    def __getattr__(self, name):
        return getattr(datetime, name)

    datetime = _FixedClock


# uproot 5.7 stamps TKey, TDirectory and TTree headers with datetime.datetime.now(),
# read from the module-level name ``datetime`` of these modules.
_STAMPING_MODULES = ("uproot.writing._cascade", "uproot.writing._cascadetree", "uproot.writing.writable")


@contextlib.contextmanager
def create_root(path: str | Path) -> Iterator[uproot.WritableDirectory]:
    """Create (or replace) a ROOT file whose bytes depend only on its content.

    The file UUID is fixed and every timestamp is 2000-01-01 00:00 (or the time
    given by the ``SOURCE_DATE_EPOCH`` environment variable, as for
    reproducible builds), so the same content written twice gives the same
    file. The file is closed when the block ends.
    """
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None and epoch.isdigit():
        _FixedClock.fixed = datetime.datetime.fromtimestamp(int(epoch), tz=datetime.timezone.utc).replace(tzinfo=None)
    modules = [sys.modules.get(name) or importlib.import_module(name) for name in _STAMPING_MODULES]
    saved = [getattr(module, "datetime", None) for module in modules]
    for module in modules:
        if saved[modules.index(module)] is datetime:
            module.datetime = _ClockShim()
    try:
        with open(path, "w+b") as handle, uproot.recreate(handle, uuid_function=lambda: uuid.UUID(int=0)) as file:
            yield file
    finally:
        for module, original in zip(modules, saved):
            if original is not None:
                module.datetime = original
