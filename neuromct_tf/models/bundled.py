"""The default regressor shipped inside the package."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from neuromct_tf.errors import InvalidInputError

#: File name of the bundled regressor inside ``neuromct_tf/models``.
DEFAULT_REGRESSOR = "default_regressor.keras"


def default_regressor_path() -> Path:
    """Return the path of the bundled regressor.

    Raises
    ------
    InvalidInputError
        If the package was installed without it.
    """
    path = Path(str(importlib.resources.files("neuromct_tf.models").joinpath(DEFAULT_REGRESSOR)))
    if not path.is_file():
        raise InvalidInputError(
            f"the bundled regressor {path} is missing from this installation; pass a model file, "
            "or train one with scripts/train_default_regressor.sh"
        )
    return path


def resolve_model_path(path: str | Path | None) -> Path:
    """Return ``path``, or the bundled regressor when ``path`` is ``None``."""
    return default_regressor_path() if path is None else Path(path)


#: File name of the bundled GAN generator inside ``neuromct_tf/models``.
DEFAULT_GAN = "default_gan.keras"


def default_gan_path() -> Path:
    """Return the path of the bundled GAN generator.

    Raises
    ------
    InvalidInputError
        If the package was installed without it.
    """
    path = Path(str(importlib.resources.files("neuromct_tf.models").joinpath(DEFAULT_GAN)))
    if not path.is_file():
        raise InvalidInputError(
            f"the bundled GAN generator {path} is missing from this installation; pass a model file, "
            "or train one with scripts/train_default_gan.sh"
        )
    return path
