"""Exception tree of neuromct-tf.

Every error that a user can cause and fix derives from :class:`NeuroMCTError`.
Its message names the file, object or value at fault and the fix. The
command-line interface prints it on one line and exits with code 2.
"""


class NeuroMCTError(Exception):
    """Base class of all errors raised on purpose by neuromct-tf."""


class InvalidInputError(NeuroMCTError, ValueError):
    """An input file, option or value is missing, malformed or out of range."""


class InvalidSpecError(InvalidInputError):
    """A data-spec file has an unknown key, an empty grid or an invalid value."""


class SpecMismatchError(NeuroMCTError):
    """A file or model was made with a data spec that differs from the one in use."""


class OutputError(NeuroMCTError, OSError):
    """An output cannot be written: it exists without ``overwrite``, or its directory is not writable."""
