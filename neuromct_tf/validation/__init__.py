"""Evaluation of surrogates against high-statistics reference spectra.

:mod:`~neuromct_tf.validation.metrics` contains the distances between binned
spectra and the Pearson chi-square test; :mod:`~neuromct_tf.validation.evaluate`
applies them to every surrogate, test point and source.
"""
