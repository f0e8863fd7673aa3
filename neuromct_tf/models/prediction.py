"""Spectra predicted by a regressor at one parameter point, written as ROOT histograms or a plot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuromct_tf.io.atomic import atomic_output
from neuromct_tf.io.metadata import FileMetadata, write_metadata
from neuromct_tf.io.rootfile import create_root
from neuromct_tf.models.regressor import predict_spectra
from neuromct_tf.specs import DataSpec


@dataclass(frozen=True)
class PointPrediction:
    """Predicted bin probabilities of several sources at one point.

    Attributes
    ----------
    point : numpy.ndarray of float64, shape (3,)
        kB, fC, LY.
    sources : tuple of str
        Source names.
    probabilities : numpy.ndarray of float64, shape (num_sources, num_bins)
        Bin probabilities, each row summing to one.
    """

    point: np.ndarray
    sources: tuple[str, ...]
    probabilities: np.ndarray


def predict_point(model, spec: DataSpec, point: Sequence[float], sources: Sequence[str]) -> PointPrediction:
    """Predict the spectra of ``sources`` at ``point`` (checked against the box)."""
    values = spec.check_point(point)
    ids = np.array([spec.source_id(name) for name in sources], dtype=np.int32)
    probabilities = predict_spectra(model, np.tile(values, (len(ids), 1)), ids)
    return PointPrediction(point=values, sources=tuple(sources), probabilities=probabilities)


def write_prediction(
    prediction: PointPrediction,
    spec: DataSpec,
    root_path: str | Path | None = None,
    png_path: str | Path | None = None,
    events: int | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write the prediction as one TH1D per source and/or a PNG plot; return the paths written.

    The TH1D contents are bin probabilities, or expected entries when ``events`` is given.
    """
    written = []
    if root_path is not None:
        import boost_histogram as bh

        scale = 1.0 if events is None else float(events)
        metadata = FileMetadata(
            "prediction", spec.to_dict(), details={"point": prediction.point.tolist(), "events": events}
        )
        with atomic_output(root_path, overwrite) as temporary, create_root(temporary) as file:
            write_metadata(file, metadata)
            for name, row in zip(prediction.sources, prediction.probabilities):
                histogram = bh.Histogram(bh.axis.Variable(spec.binning.edges_array()), storage=bh.storage.Double())
                histogram.view()[:] = row * scale
                file[name] = histogram
        written.append(Path(root_path))
    if png_path is not None:
        from neuromct_tf.plotting.spectra import plot_predicted_spectra

        plot_predicted_spectra(prediction, spec, png_path, overwrite=overwrite)
        written.append(Path(png_path))
    return written
