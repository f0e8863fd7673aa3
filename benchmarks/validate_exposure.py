"""Benchmark of the exposure study: datasets of the reference simulation at the nominal point, fitted in batches.

Runs what ``neuromct-tf validate exposure`` runs: every exposure of the
spec's testing2 grid, ``--datasets`` pseudo-datasets each, batched MLE, and
the Cramér–Rao bound with its simulation cross-check. It writes the same
outputs and prints a JSON record with the machine, the date, the wall time
per exposure split into simulation and fits, and the statistics against the
targets |median bias| <= 0.1 sigma, sigma_fit / sigma_CRB <= 1.05 and 68 %
coverage within 66-70 %. Chunks already in ``--out`` are reused, so their time is
the one recorded when they were made.

    .venv/bin/python benchmarks/validate_exposure.py --datasets 1000 --jobs 2 \\
        --out /work/grids/validate/exposure --json validate_exposure.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path

from neuromct_tf.specs import default_spec
from neuromct_tf.validation.campaigns import StudySettings, exposure_output_paths, run_exposure_study
from neuromct_tf.validation.reports import exposure_summary, write_exposure_root, write_json


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo (Linux), or the platform's processor string."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=1000, help="pseudo-datasets per exposure")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes of the simulation")
    parser.add_argument("--seed", type=int, default=20261204, help="seed of the pseudo-data, starts and Fisher spectra")
    parser.add_argument("--fisher-events", type=int, default=200_000, help="decays per source and replica of the Fisher check")
    parser.add_argument("--model", default=None, help="regressor .keras file; the bundled model when omitted")
    parser.add_argument("--out", type=Path, required=True, help="output directory (chunks are reused)")
    parser.add_argument("--json", type=Path, default=None, help="also write the record to this file")
    parser.add_argument("--overwrite", action="store_true", help="replace final outputs in --out")
    args = parser.parse_args()

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    spec = default_spec()
    settings = StudySettings(num_datasets=args.datasets, seed=args.seed, num_jobs=args.jobs)
    start = time.perf_counter()
    study = run_exposure_study(
        spec, args.out, settings, fisher_events=args.fisher_events, model_path=args.model, overwrite=args.overwrite
    )
    paths = exposure_output_paths(args.out)
    write_exposure_root(study, paths["fits"], args.overwrite)
    summary = exposure_summary(study)
    write_json(summary, paths["summary"], args.overwrite)
    from neuromct_tf.plotting.validation import plot_exposure_study

    plot_exposure_study(study, paths["figure"], args.overwrite)
    wall = time.perf_counter() - start

    per_exposure = {}
    for exposure in study.exposures:
        fits = study.fits[exposure]
        per_exposure[exposure] = {
            "simulation_seconds": round(fits.simulation_seconds, 1),
            "fit_seconds": round(fits.fit_seconds, 1),
            "converged": int(fits.converged.sum()),
            "at_edge": int(fits.at_edge.sum()),
            "targets": {
                entry.name: {
                    "bias_in_sigma": round(entry.bias_in_sigma, 3),
                    "spread_over_crb": round(entry.spread_over_crb, 3),
                    "sigma_over_crb": round(entry.sigma_over_crb, 3),
                    "coverage68": round(entry.coverage68, 3),
                    "coverage95": round(entry.coverage95, 3),
                    "pull_mean": round(entry.pull_mean, 3),
                    "pull_width": round(entry.pull_width, 3),
                }
                for entry in study.statistics[exposure]
            },
        }
    record = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": f"{platform.machine()}, {cpu_model()}, {os.cpu_count()} cores",
        "datasets_per_exposure": args.datasets,
        "jobs": args.jobs,
        "wall_seconds_this_run": round(wall, 1),
        "recorded_seconds": round(sum(v["simulation_seconds"] + v["fit_seconds"] for v in per_exposure.values()), 1),
        "exposures": per_exposure,
        "cramer_rao": summary["cramer_rao"],
    }
    text = json.dumps(record, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
