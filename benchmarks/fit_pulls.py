"""Pulls of the fit on pseudo-calibration sets from the reference simulation at the nominal point.

Each dataset simulates ``--events`` decays per source at the nominal point
with its own seed (the streams of ``neuromct-tf simulate calib --seed``) and
bins them in the spec's binning in memory. ``run_fit`` fits the first
``--hmc-datasets`` with the default fit (MLE, then HMC) and the others with
``--method mle``. Every dataset contributes an MLE pull; the HMC
subset also contributes posterior pulls.

The pull of a parameter is (estimate - truth) / sigma: the MLE and its
Hessian error, or the posterior mean and standard deviation. The 68 %
coverage is the fraction of datasets whose central 68 % interval (MLE +-
0.994 sigma, or the posterior's 16 % to 84 % quantiles) contains the truth.
Since the pseudo-data come from the reference simulation and the fit uses
the regressor, the pulls test the surrogate as well as the statistics.

    .venv/bin/python benchmarks/fit_pulls.py --num-datasets 100 --hmc-datasets 20 \\
        --figure docs/_static/fit_pulls.png --json fit_pulls.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from neuromct_tf.inference.fit import FitConfig, run_fit
from neuromct_tf.inference.model import ObservedSpectra
from neuromct_tf.inference.sampling import SamplerConfig
from neuromct_tf.io.calib import histogram_counts, make_histogram
from neuromct_tf.models.bundled import resolve_model_path
from neuromct_tf.models.regressor import load_regressor
from neuromct_tf.sim.runner import CALIBRATION_STREAM, simulate_chunked
from neuromct_tf.specs import default_spec

#: Nominal (kB g/cm2/GeV, fC, LY photons/MeV) of the pseudo-data.
NOMINAL = (15.45, 0.525, 10100.0)
PHYSICS = ("kB", "fC", "LY")


def simulate_observed(spec, point, num_events: int, seed: int) -> ObservedSpectra:
    """Simulate every spec source at ``point`` and return its binned counts (what ``simulate calib`` plus ``fit`` read)."""
    counts, underflow, overflow = [], [], []
    for name in spec.sources:
        npe, _ = simulate_chunked(name, point, num_events, seed, CALIBRATION_STREAM, 0, spec.source_id(name))
        histogram = make_histogram(spec.binning)
        histogram.fill(npe)
        in_range, below, above = histogram_counts(histogram)
        counts.append(in_range)
        underflow.append(below)
        overflow.append(above)
    return ObservedSpectra(
        sources=tuple(spec.sources),
        source_ids=np.array([spec.source_id(name) for name in spec.sources], dtype=np.int32),
        counts=np.stack(counts),
        num_underflow=np.array(underflow, dtype=np.int64),
        num_overflow=np.array(overflow, dtype=np.int64),
    )


def estimates(result, method: str) -> dict:
    """Return estimate, sigma and 68 % interval per physics parameter: the MLE ones or the posterior ones."""
    values = {}
    for name in PHYSICS:
        summary = result.summary(name)
        if method == "mle":
            low, high = summary.mle - 0.994457883 * summary.mle_error, summary.mle + 0.994457883 * summary.mle_error
            values[name] = {"estimate": summary.mle, "sigma": summary.mle_error, "interval68": [low, high]}
        else:
            values[name] = {"estimate": summary.mean, "sigma": summary.std, "interval68": list(summary.interval68)}
    return values


def pull_statistics(records: list[dict], truth) -> dict:
    """Return per parameter the pull mean and width with their standard errors, coverage, median bias and sigma."""
    statistics = {}
    for name, value in zip(PHYSICS, truth):
        estimate = np.array([r[name]["estimate"] for r in records], dtype=float)
        sigma = np.array([r[name]["sigma"] for r in records], dtype=float)
        low = np.array([r[name]["interval68"][0] for r in records], dtype=float)
        high = np.array([r[name]["interval68"][1] for r in records], dtype=float)
        valid = np.isfinite(estimate) & np.isfinite(sigma) & (sigma > 0)
        pulls = (estimate[valid] - value) / sigma[valid]
        count = int(valid.sum())
        if count < 2:
            raise ValueError(f"{name}: {count} datasets with a finite error; pulls need at least 2")
        statistics[name] = {
            "datasets": count,
            "pull_mean": float(pulls.mean()),
            "pull_mean_error": float(pulls.std(ddof=1) / np.sqrt(count)),
            "pull_width": float(pulls.std(ddof=1)),
            # Standard error of a normal sample's standard deviation.
            "pull_width_error": float(pulls.std(ddof=1) / np.sqrt(2 * (count - 1))),
            "coverage68": float(np.mean((low[valid] < value) & (value < high[valid]))),
            "median_bias": float(np.median(estimate[valid] - value)),
            "median_sigma": float(np.median(sigma[valid])),
            "pulls": pulls.tolist(),
        }
    return statistics


def plot_pulls(statistics: dict, path: Path, title: str) -> None:
    """Draw histograms of the pulls per parameter, MLE and HMC, with the unit normal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(12, 3.8), sharey=False)
    bins = np.linspace(-4, 4, 17)
    grid = np.linspace(-4, 4, 200)
    for axis, name in zip(axes, PHYSICS):
        for method, style in (("mle", {"histtype": "stepfilled", "alpha": 0.4}), ("hmc", {"histtype": "step", "linewidth": 2})):
            if method not in statistics:
                continue
            entry = statistics[method][name]
            pulls = np.clip(entry["pulls"], -3.99, 3.99)
            label = f"{method.upper()} ({entry['datasets']}): mean {entry['pull_mean']:+.2f}, width {entry['pull_width']:.2f}"
            axis.hist(pulls, bins=bins, density=True, label=label, **style)
        axis.plot(grid, np.exp(-0.5 * grid**2) / np.sqrt(2 * np.pi), "k--", label="N(0, 1)")
        axis.set_xlabel(f"pull of {name} (overflow in the outer bins)")
        axis.legend(fontsize=7, loc="upper left")
    axes[0].set_ylabel("density")
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-datasets", type=int, default=100, help="pseudo-datasets, all fitted by MLE")
    parser.add_argument("--hmc-datasets", type=int, default=20, help="datasets, the first ones, fitted with MLE then HMC (0 or at least 2)")
    parser.add_argument("--events", type=int, default=10_000, help="decays per source and dataset")
    parser.add_argument("--seed", type=int, default=1000, help="dataset i uses simulation seed SEED + i and fit seed i")
    parser.add_argument("--model", default=None, help="regressor .keras file; the bundled model when omitted")
    parser.add_argument("--figure", type=Path, default=None, help="PNG of the pull distributions")
    parser.add_argument("--json", type=Path, default=None, help="also write the summary to this file")
    args = parser.parse_args()
    if args.num_datasets < 2 or args.hmc_datasets == 1 or not 0 <= args.hmc_datasets <= args.num_datasets:
        parser.error("give --num-datasets of at least 2 and --hmc-datasets of 0 or 2 to --num-datasets")

    # Warnings of single fits are silenced, and the summary counts the MLEs that did not converge.
    logging.basicConfig(level=logging.ERROR)
    spec = default_spec()
    truth = spec.check_point(NOMINAL)
    model_path = resolve_model_path(args.model)
    model, _ = load_regressor(model_path, spec)

    start = time.perf_counter()
    records = {"mle": [], "hmc": []}
    fit_seconds = {"mle": [], "hmc": []}
    not_converged = 0
    for index in range(args.num_datasets):
        observed = simulate_observed(spec, truth, args.events, args.seed + index)
        method = "mcmc" if index < args.hmc_datasets else "mle"
        result = run_fit(model, spec, observed, FitConfig(method=method, sampler=SamplerConfig(seed=index), truth=NOMINAL))
        not_converged += int(not result.mle.converged)
        records["mle"].append(estimates(result, "mle"))
        if method == "mcmc":
            records["hmc"].append(estimates(result, "mcmc"))
            fit_seconds["hmc"].append(result.timings["total"])
        else:
            fit_seconds["mle"].append(result.timings["total"])
        print(f"dataset {index + 1}/{args.num_datasets} ({method}): {result.timings['total']:.1f} s", file=sys.stderr)
    wall = time.perf_counter() - start

    statistics = {"mle": pull_statistics(records["mle"], truth)}
    if records["hmc"]:
        statistics["hmc"] = pull_statistics(records["hmc"], truth)
    summary = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cores": len(os.sched_getaffinity(0)),
        "model": str(model_path),
        "truth": dict(zip(PHYSICS, NOMINAL)),
        "events_per_source": args.events,
        "num_datasets": args.num_datasets,
        "hmc_datasets": args.hmc_datasets,
        "mle_not_converged": not_converged,
        "wall_seconds": wall,
        "median_fit_seconds": {key: float(np.median(value)) for key, value in fit_seconds.items() if value},
        "statistics": statistics,
    }
    if args.figure is not None:
        title = (
            f"{args.num_datasets} pseudo-datasets of the reference simulation at kB, fC, LY = {NOMINAL[0]}, "
            f"{NOMINAL[1]}, {NOMINAL[2]:g}; {args.events} decays per source"
        )
        plot_pulls(statistics, args.figure, title)
    text = json.dumps(summary, indent=2)
    brief = {k: v for k, v in summary.items() if k != "statistics"}
    brief["statistics"] = {
        method: {name: {k: v for k, v in entry.items() if k != "pulls"} for name, entry in per_method.items()}
        for method, per_method in statistics.items()
    }
    print(json.dumps(brief, indent=2))
    if args.json is not None:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
