"""How far a regressor's fit lands from its teacher's, without simulation noise.

For each true point the script takes the expected spectra of a teacher (the
ensemble of the ``--teacher`` regressors, mean probabilities) for 10k decays
per source, and computes the linearised MLE offset of each model given on
them: I^-1 times the score at the true point, with I the model's Fisher
information, the normalisations profiled. In units of the statistical error
of 10k decays per source, the offset does not depend on the number of decays
and carries no statistical error, so it resolves differences between models
far below the 0.07 of ``surrogate_bias.py``. It measures the distance to the
teacher, not to the reference simulation: use it to judge a distilled model
or the spread of single models around their ensemble.

The points are the nominal one, LY = 9900 and 10300 at the nominal kB and fC,
(12, 0.3, 9500) and (19, 0.75, 10700), then ``--random`` points drawn
uniformly in the inner 80 % of the box.

    .venv/bin/python benchmarks/teacher_offset.py --teacher seed1.keras --teacher seed2.keras \\
        --teacher seed3.keras --teacher seed4.keras distilled.keras seed1.keras
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from surrogate_bias import format_row, source_shares  # noqa: E402

from neuromct_tf.models.regressor import build_ensemble, load_regressor, predict_spectra  # noqa: E402
from neuromct_tf.specs import default_spec  # noqa: E402

FIXED_POINTS = [
    (15.45, 0.525, 10100.0), (15.45, 0.525, 9900.0), (15.45, 0.525, 10300.0), (12.0, 0.3, 9500.0), (19.0, 0.75, 10700.0),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path, help="regressor .keras files to compare with the teacher")
    parser.add_argument("--teacher", action="append", type=Path, required=True,
                        help="regressor of the teacher ensemble (repeatable); a single file is the teacher itself")
    parser.add_argument("--random", type=int, default=10, help="random points after the five fixed ones")
    parser.add_argument("--seed", type=int, default=5, help="seed of the random points")
    args = parser.parse_args()

    spec = default_spec()
    members = [load_regressor(path, spec)[0] for path in args.teacher]
    teacher = members[0] if len(members) == 1 else build_ensemble(members, [str(p) for p in args.teacher])
    models = [(path, load_regressor(path, spec)[0]) for path in args.models]
    box = spec.box()
    rng = np.random.default_rng(args.seed)
    inner = box[:, 0] + (box[:, 1] - box[:, 0]) * rng.uniform(0.1, 0.9, size=(args.random, 3))
    points = FIXED_POINTS + [tuple(point) for point in inner]
    sources = np.arange(len(spec.sources))
    offsets = {path: [] for path, _ in models}
    for point in points:
        expected = 10_000 * predict_spectra(teacher, np.array([point] * len(sources)), sources)
        for path, model in models:
            shares = source_shares(model, spec, point, expected)
            offsets[path].append(shares["total"] / shares["sigma"])
            print(f"{path} at {','.join(f'{v:g}' for v in point)}: {format_row(offsets[path][-1])}", flush=True)
    print("offset from the teacher in units of sigma(10k), over all points:")
    for path, rows in offsets.items():
        rows = np.array(rows)
        print(f"  {path}: rms {np.sqrt(np.mean(rows ** 2)):.3f}, mean {format_row(rows.mean(axis=0))}")


if __name__ == "__main__":
    main()
