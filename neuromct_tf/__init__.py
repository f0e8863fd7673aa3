"""Fast Monte Carlo tuning of the energy response of a liquid-scintillator detector.

The package is organised by pipeline stage, in the order data flows:
:mod:`neuromct_tf.specs` (data specifications), :mod:`neuromct_tf.io` (ROOT
layouts), :mod:`neuromct_tf.sim` (reference detector-response simulation) and
:mod:`neuromct_tf.cli` (the ``neuromct-tf`` command).
"""

from neuromct_tf._version import __version__

__all__ = ["__version__"]
