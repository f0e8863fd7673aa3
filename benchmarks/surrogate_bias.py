"""Bias of the MLE from the surrogate alone, on one high-statistics dataset per true point.

With N decays per source the statistical error of the MLE shrinks as
1/sqrt(N), so on a large dataset what is left of (MLE - truth) is mostly the
surrogate's error at that point. The script simulates ``--events`` decays
per source at each true point, the nominal one by default (the streams of
``neuromct-tf simulate calib`` with ``--seed``), and fits them by MLE with
each model given. It prints the
bias in units of the statistical error of a 10k-event dataset, the unit of
the pull study in ``benchmarks/fit_pulls.py``. The bias itself carries a
statistical error of sqrt(10k / N) in that unit (0.07 for N = 2M).

``--point kB,fC,LY`` (repeatable) replaces the nominal point, so the bias can
be mapped around it.

``--by-source`` splits the bias among the sources. To first order the MLE's
offset is I^-1 times the score at the truth. The score is a sum over
sources, so I^-1 times one source's score is that source's share. The shares
add up to the linearised bias, which the script prints under the MLE's.
I is the surrogate's Fisher information for the simulated numbers of
entries, with the normalisations profiled (a multinomial per source).

    .venv/bin/python benchmarks/surrogate_bias.py --events 2000000 \\
        neuromct_tf/models/default_regressor.keras other.keras
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fit_pulls import NOMINAL, PHYSICS, simulate_observed  # noqa: E402

from neuromct_tf.inference.batched import BatchedLikelihood  # noqa: E402
from neuromct_tf.inference.fit import FitConfig, run_fit  # noqa: E402
from neuromct_tf.models.regressor import load_regressor  # noqa: E402
from neuromct_tf.specs import default_spec  # noqa: E402
from neuromct_tf.validation.fisher import surrogate_derivatives  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path, help="regressor .keras files")
    parser.add_argument("--events", type=int, default=2_000_000, help="decays per source")
    parser.add_argument("--seed", type=int, default=777, help="seed of the simulation")
    parser.add_argument("--point", action="append", type=parse_point, metavar="KB,FC,LY",
                        help="true point (repeatable); default: the nominal point")
    parser.add_argument("--by-source", action="store_true", help="split the linearised bias among the sources")
    args = parser.parse_args()

    spec = default_spec()
    scale = np.sqrt(args.events / 10_000)
    models = [(path, load_regressor(path, spec)[0]) for path in args.models]
    for point in args.point or [tuple(NOMINAL)]:
        observed = simulate_observed(spec, point, args.events, args.seed)
        for path, model in models:
            result = run_fit(model, spec, observed, FitConfig(method="mle"))
            columns = []
            for name, truth in zip(PHYSICS, point):
                summary = result.summary(name)
                bias = summary.mle - truth
                columns.append(f"{name} {summary.mle:.5g} bias {bias:+.4g} = "
                               f"{bias / (summary.mle_error * scale):+.2f} sigma(10k)")
            print(f"{path} at {','.join(f'{v:g}' for v in point)}: " + " | ".join(columns), flush=True)
            if args.by_source:
                shares = source_shares(model, spec, point, observed.counts)
                sigma_10k = shares["sigma"] * scale
                print(f"    linearised bias (sigma(10k)): {format_row(shares['total'] / sigma_10k)}")
                for name, share in zip(spec.sources, shares["sources"]):
                    print(f"    from {name:6s}: {format_row(share / sigma_10k)}", flush=True)


def format_row(values) -> str:
    """Format one value per physics parameter, with its name."""
    return "  ".join(f"{name} {value:+.2f}" for name, value in zip(PHYSICS, values))


def source_shares(model, spec, point, counts) -> dict:
    """Return the linearised MLE offset, each source's share of it and the standard errors, all for ``counts``."""
    probabilities, derivatives = surrogate_derivatives(BatchedLikelihood(model, spec, spec.sources), [point])
    probabilities = probabilities[0]
    # d log p / d theta, shape (sources, bins, 3); a bin of zero probability contributes nothing.
    safe = np.where(probabilities > 0, probabilities, 1.0)
    derivatives = np.where(probabilities > 0, derivatives[0] / safe, 0.0).transpose(1, 2, 0)
    information = np.zeros((3, 3))
    scores = []
    for n, p, d in zip(np.asarray(counts, np.float64), probabilities, derivatives):
        total = n.sum()
        mean_score = d.T @ p
        information += total * ((d * p[:, None]).T @ d - np.outer(mean_score, mean_score))
        scores.append(d.T @ n - total * mean_score)
    covariance = np.linalg.inv(information)
    sources = np.array([covariance @ score for score in scores])
    return {"total": sources.sum(axis=0), "sources": sources, "sigma": np.sqrt(np.diag(covariance))}


def parse_point(text: str) -> tuple[float, float, float]:
    """Parse ``kB,fC,LY`` into three floats."""
    values = tuple(float(v) for v in text.split(","))
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected kB,fC,LY, got {text!r}")
    return values


if __name__ == "__main__":
    main()
