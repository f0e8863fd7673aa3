"""Data specifications of neuromct-tf, shipped as YAML files (see :mod:`neuromct_tf.specs`)."""
