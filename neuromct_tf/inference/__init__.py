"""Fit of kB, fC and LY to calibration spectra: statistical model, MLE, MCMC sampling and outputs."""
