"""Data specifications: the parameter box, the sources, the NPE binning and the grids.

A :class:`DataSpec` is loaded from the YAML files in ``data_specs/`` with
:func:`load_spec`, which merges an optional user file over the default one and
validates the result. Every file and model that neuromct-tf writes records the
spec it was made with, so that readers can reject a mismatch
(:meth:`DataSpec.check_compatible`).
"""

from neuromct_tf.specs.loading import default_spec, load_spec
from neuromct_tf.specs.model import (
    PARAMETER_NAMES,
    Binning,
    DataSpec,
    ExposureGrid,
    Parameter,
    PointListGrid,
    ProductGrid,
)

__all__ = [
    "PARAMETER_NAMES",
    "Binning",
    "DataSpec",
    "ExposureGrid",
    "Parameter",
    "PointListGrid",
    "ProductGrid",
    "default_spec",
    "load_spec",
]
