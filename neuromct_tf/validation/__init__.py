"""Evaluation of surrogates against high-statistics reference spectra, and validation studies of the fit.

:mod:`~neuromct_tf.validation.metrics` contains the distances between binned
spectra and the Pearson chi-square test; :mod:`~neuromct_tf.validation.evaluate`
applies them to every surrogate, test point and source.
:mod:`~neuromct_tf.validation.campaigns` fits many pseudo-datasets with a known
truth and reports bias, pulls, coverage and the Cramér–Rao bound of
:mod:`~neuromct_tf.validation.fisher`.
"""
