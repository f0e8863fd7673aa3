"""Surrogates of the reference simulation: the Transformer regressor and the interpolation baseline."""
