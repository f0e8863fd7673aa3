"""Version of neuromct-tf, the single place where it is set."""

__version__ = "0.1.0"
