"""Plot the NPE spectra of the five sources at three parameter points.

Writes ``docs/_static/reference_spectra.png``, the figure of the physics page.
Run from the repository root:

    .venv/bin/python scripts/plot_reference_spectra.py --events 50000 --seed 1
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neuromct_tf.sim.runner import random_stream, simulate_triggers  # noqa: E402
from neuromct_tf.specs import default_spec  # noqa: E402

POINTS = {
    "nominal (15.45, 0.525, 10100)": (15.45, 0.525, 10100.0),
    "low quenching, high Cherenkov (8, 0.9, 10100)": (8.0, 0.9, 10100.0),
    "high quenching, low light yield (22, 0.1, 8500)": (22.0, 0.1, 8500.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50000, help="decays per source and point")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random streams")
    parser.add_argument("--out", type=Path, default=Path("docs/_static/reference_spectra.png"))
    args = parser.parse_args()

    spec = default_spec()
    edges = spec.binning.edges_array()
    figure, axes = plt.subplots(len(spec.sources), 1, figsize=(8, 12), sharex=True)
    for source_id, (source, axis) in enumerate(zip(spec.sources, axes)):
        for point_index, (label, point) in enumerate(POINTS.items()):
            rng = random_stream(args.seed, "figure", point_index, source_id)
            npe, _ = simulate_triggers(source, point, args.events, rng)
            counts, _ = np.histogram(npe, bins=edges)
            axis.stairs(counts / counts.sum(), edges, label=label)
        axis.set_ylabel("fraction / 0.02 kNPE")
        axis.set_title(source, loc="left", fontsize=10)
        axis.set_yscale("log")
        axis.set_ylim(bottom=1e-5)
    axes[0].legend(fontsize=8)
    axes[-1].set_xlabel("NPE [thousands of photo-electrons]")
    axes[-1].set_xlim(0.4, 12.0)
    figure.suptitle(f"Reference simulation, {args.events} decays per source (kB g/cm²/GeV, fC, LY /MeV)")
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
