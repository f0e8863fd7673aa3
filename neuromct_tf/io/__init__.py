"""ROOT file layouts of neuromct-tf, read and written with uproot.

- :mod:`neuromct_tf.io.mcgrid`: MC grid files (per-event NPE of a simulation grid).
- :mod:`neuromct_tf.io.calib`: calibration files, the input of the fit.
- :mod:`neuromct_tf.io.metadata`: the record of spec, version and seed in every file.
- :mod:`neuromct_tf.io.rootfile`: opening ROOT files with errors a user can act on.
- :mod:`neuromct_tf.io.atomic`: writing through a temporary file and a rename.
"""
