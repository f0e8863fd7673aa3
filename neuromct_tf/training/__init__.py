"""Training loops of the surrogates."""
