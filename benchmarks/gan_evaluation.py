"""Accuracy of the GAN generator next to the regressor and the interpolation baseline.

The three surrogates are scored on a test file (an MC grid of points off the
training grid) with :func:`neuromct_tf.validation.evaluate.evaluate_surrogates`.
The metrics are the W1, Cramér–von Mises and Kolmogorov–Smirnov distances of
the CDFs and the chi2/ndf of the test counts (bins with at least 5 expected counts). The GAN's
spectra are histograms of ``--events`` generated events per (point, source),
from one fixed set of noise vectors. The regressor's and the baseline's
spectra are exact, so only the GAN's figures carry generation noise.

The low-statistics region of a test spectrum is the set of bins whose
simulated probability is below ``--low-probability`` (1e-3 by default): the
tails of the peaks and most of the AmBe and AmC continua. It is scored
separately with the ratio of predicted to simulated probability in the region
(1 is exact) and the chi2/ndf over its bins with at least 5 expected counts.

    .venv/bin/python benchmarks/gan_evaluation.py --gan neuromct_tf/models/default_gan.keras \\
        --test grids/reference.root --events 1000000 --json gan-reference.json
    .venv/bin/python benchmarks/gan_evaluation.py --gan neuromct_tf/models/default_gan.keras \\
        --test grids/testing1.root --events 20000 --json gan-testing1.json

Medians over the test points are printed per source as Markdown tables.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from neuromct_tf.data.histograms import build_grid_histograms, cache_directory_for
from neuromct_tf.models.bundled import default_regressor_path
from neuromct_tf.models.gan import load_generator, predict_gan_spectra
from neuromct_tf.models.interpolation import GridInterpolator
from neuromct_tf.models.regressor import load_regressor, predict_spectra
from neuromct_tf.specs import default_spec
from neuromct_tf.validation.evaluate import METRIC_NAMES, evaluate_surrogates


def low_statistics_scores(predicted: np.ndarray, counts: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
    """Score spectra (points, sources, bins) in the bins whose simulated probability is below ``threshold``.

    Returns the ratio of predicted to simulated probability in those bins and
    the chi2/ndf over the ones with at least 5 expected counts, both of shape
    (points, sources). A value is NaN where the region is empty or has fewer
    than two such bins.
    """
    totals = counts.sum(axis=-1, keepdims=True)
    reference = counts / totals
    region = reference < threshold
    predicted = predicted / np.maximum(predicted.sum(axis=-1, keepdims=True), 1e-300)
    reference_mass = np.where(region, reference, 0.0).sum(axis=-1)
    predicted_mass = np.where(region, predicted, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(reference_mass > 0, predicted_mass / reference_mass, np.nan)
        expected = predicted * totals
        used = region & (expected >= 5.0)
        chi2 = np.where(used, (counts - expected) ** 2 / np.maximum(expected, 1e-300), 0.0).sum(axis=-1)
        ndf = used.sum(axis=-1) - 1
        reduced = np.where(ndf > 0, chi2 / np.maximum(ndf, 1), np.nan)
    return {"mass_ratio": ratio, "chi2_per_ndf": reduced}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gan", type=Path, required=True, help="generator .keras file")
    parser.add_argument("--regressor", type=Path, default=None, help="regressor .keras file; the bundled one when omitted")
    parser.add_argument("--test", type=Path, required=True, help="MC grid file of test points")
    parser.add_argument("--training", type=Path, default=Path("grids/training.root"), help="training grid file, for the baseline")
    parser.add_argument("--cache", type=Path, default=None, help="histogram cache directory; next to --json when omitted")
    parser.add_argument("--events", type=int, default=20_000, help="generated events per (point, source)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the GAN's noise vectors")
    parser.add_argument("--low-probability", type=float, default=1e-3, help="bins below this simulated probability form the low-statistics region")
    parser.add_argument("--json", type=Path, required=True, help="summary output")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)

    spec = default_spec()
    cache = args.cache if args.cache is not None else cache_directory_for(args.json)
    test = build_grid_histograms([args.test], spec, cache_dir=cache)
    training = build_grid_histograms([args.training], spec, cache_dir=cache)
    baseline = GridInterpolator.from_histograms(training, spec.grid("training"))
    regressor, _ = load_regressor(args.regressor or default_regressor_path(), spec)
    generator, _ = load_generator(args.gan, spec)

    seconds, outputs = {}, {}

    def timed(name, function):
        # evaluate_surrogates queries every (point, source) once, points slowest; the spectra are
        # kept for the low-statistics scores.
        def run(points, ids):
            start = time.perf_counter()
            spectra = function(points, ids)
            seconds[name] = time.perf_counter() - start
            outputs[name] = spectra
            return spectra

        return run

    predict_fns = {
        "gan": timed("gan", lambda points, ids: predict_gan_spectra(generator, spec, points, ids, args.events, args.seed)),
        "regressor": timed("regressor", lambda points, ids: predict_spectra(regressor, points, ids)),
        "interpolation": timed("interpolation", baseline.predict),
    }
    result = evaluate_surrogates(predict_fns, test, spec)

    num_points = test.counts.shape[0]
    low = {}
    for name in predict_fns:
        predicted = np.asarray(outputs[name], dtype=np.float64).reshape(test.counts.shape)
        scores = low_statistics_scores(predicted, test.counts.astype(np.float64), args.low_probability)
        low[name] = {
            source: {key: float(np.nanmedian(values[:, s])) for key, values in scores.items()}
            for s, source in enumerate(spec.sources)
        }

    summary = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cores": len(os.sched_getaffinity(0)),
        "test": str(args.test),
        "num_points": num_points,
        "gan": str(args.gan),
        "gan_events": args.events,
        "prediction_seconds": seconds,
        "medians": result.summary(),
        "low_statistics": {"threshold": args.low_probability, "medians": low},
    }
    args.json.write_text(json.dumps(summary, indent=2))

    for metric in METRIC_NAMES:
        print(f"\n{metric}, median over {num_points} points")
        print("| source | " + " | ".join(result.surrogates) + " |")
        print("| --- |" + " --- |" * len(result.surrogates))
        for source in spec.sources:
            values = [summary["medians"][name][source][metric] for name in result.surrogates]
            print(f"| {source} | " + " | ".join(f"{v:.3g}" for v in values) + " |")
    for key in ("mass_ratio", "chi2_per_ndf"):
        print(f"\nlow-statistics region (p < {args.low_probability:g}): {key}, median over {num_points} points")
        print("| source | " + " | ".join(result.surrogates) + " |")
        print("| --- |" + " --- |" * len(result.surrogates))
        for source in spec.sources:
            print(f"| {source} | " + " | ".join(f"{low[name][source][key]:.3g}" for name in result.surrogates) + " |")


if __name__ == "__main__":
    main()
