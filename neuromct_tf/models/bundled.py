"""The default regressor and GAN generator shipped inside the package."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from neuromct_tf.errors import InvalidInputError

#: File name of the bundled regressor inside ``neuromct_tf/models``.
DEFAULT_REGRESSOR = "default_regressor.keras"

#: File name of the bundled GAN generator inside ``neuromct_tf/models``.
DEFAULT_GAN = "default_gan.keras"


def _bundled_path(file_name: str, description: str, script: str) -> Path:
    path = Path(str(importlib.resources.files("neuromct_tf.models").joinpath(file_name)))
    if not path.is_file():
        raise InvalidInputError(
            f"the bundled {description} {path} is missing from this installation; pass a model file, "
            f"or train one with scripts/{script}"
        )
    return path


def default_regressor_path() -> Path:
    """Return the path of the bundled regressor.

    Raises
    ------
    InvalidInputError
        If the package was installed without it.
    """
    return _bundled_path(DEFAULT_REGRESSOR, "regressor", "train_default_regressor.sh")


def resolve_model_path(path: str | Path | None) -> Path:
    """Return ``path``, or the bundled regressor when ``path`` is ``None``."""
    return default_regressor_path() if path is None else Path(path)


def default_gan_path() -> Path:
    """Return the path of the bundled GAN generator.

    Raises
    ------
    InvalidInputError
        If the package was installed without it.
    """
    return _bundled_path(DEFAULT_GAN, "GAN generator", "train_default_gan.sh")
