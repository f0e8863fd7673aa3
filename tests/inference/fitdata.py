"""Pseudo-data for the fit tests: Poisson counts drawn from the regressor itself."""

from __future__ import annotations

import numpy as np

from neuromct_tf.inference.model import ObservedSpectra
from neuromct_tf.models.regressor import predict_spectra

#: Interior point of the tiny spec's box, the truth of the pseudo-data.
TRUTH = (15.0, 0.5, 10000.0)


def pseudo_data(model, spec, point, events_per_source: int, seed: int, sources=None) -> ObservedSpectra:
    """Return Poisson counts with means events_per_source * p_sb(point) from the regressor itself."""
    names = tuple(sources or spec.sources)
    source_ids = np.array([spec.source_id(name) for name in names], dtype=np.int32)
    probabilities = predict_spectra(model, np.tile(np.asarray(point, dtype=np.float64), (len(names), 1)), source_ids)
    counts = np.random.default_rng(seed).poisson(events_per_source * probabilities).astype(np.int64)
    zeros = np.zeros(len(names), dtype=np.int64)
    return ObservedSpectra(names, source_ids, counts, zeros, zeros)
