"""Bias of the MLE at the nominal point from the surrogate alone, on one high-statistics dataset.

With N decays per source the statistical error of the MLE shrinks as
1/sqrt(N), so on a large dataset what is left of (MLE - truth) is mostly the
surrogate's error at that point. The script simulates ``--events`` decays
per source at the nominal point (the streams of ``neuromct-tf simulate calib``
with ``--seed``) and fits them by MLE with each model given. It prints the
bias in units of the statistical error of a 10k-event dataset, the unit of
the pull study in ``benchmarks/fit_pulls.py``. The bias itself carries a
statistical error of sqrt(10k / N) in that unit (0.07 for N = 2M).

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

from neuromct_tf.inference.fit import FitConfig, run_fit  # noqa: E402
from neuromct_tf.models.regressor import load_regressor  # noqa: E402
from neuromct_tf.specs import default_spec  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path, help="regressor .keras files")
    parser.add_argument("--events", type=int, default=2_000_000, help="decays per source")
    parser.add_argument("--seed", type=int, default=777, help="seed of the simulation")
    args = parser.parse_args()

    spec = default_spec()
    observed = simulate_observed(spec, NOMINAL, args.events, args.seed)
    scale = np.sqrt(args.events / 10_000)
    for path in args.models:
        model, _ = load_regressor(path, spec)
        result = run_fit(model, spec, observed, FitConfig(method="mle"))
        columns = []
        for name, truth in zip(PHYSICS, NOMINAL):
            summary = result.summary(name)
            bias = summary.mle - truth
            columns.append(f"{name} {summary.mle:.5g} bias {bias:+.4g} = {bias / (summary.mle_error * scale):+.2f} sigma(10k)")
        print(f"{path}: " + " | ".join(columns), flush=True)


if __name__ == "__main__":
    main()
